// The few node:assert functions the live suite uses, for running it in a browser.
function same(a, b) {
  if (Object.is(a, b)) return true;
  if (ArrayBuffer.isView(a) && ArrayBuffer.isView(b)) return a.length === b.length && a.every((x, i) => x === b[i]);
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => same(x, b[i]));
  if (a && b && typeof a === "object" && typeof b === "object") {
    const keys = Object.keys(a);
    return keys.length === Object.keys(b).length && keys.every((k) => same(a[k], b[k]));
  }
  return false;
}

const fail = (message) => { throw new Error(message); };

export default {
  ok: (value, message) => value || fail(message ?? `expected a truthy value, got ${value}`),
  equal: (actual, expected, message) => Object.is(actual, expected) || fail(message ?? `expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`),
  deepEqual: (actual, expected, message) => same(actual, expected) || fail(message ?? `expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`),
  match: (text, pattern) => pattern.test(text) || fail(`${JSON.stringify(text)} does not match ${pattern}`),
  fail,
  /** Like node:assert's: `expected` is an error class, or an object of properties the error must have. */
  throws(run, expected) {
    try {
      run();
    } catch (error) {
      const fits = typeof expected === "function"
        ? error instanceof expected
        : Object.entries(expected ?? {}).every(([key, value]) => same(error?.[key], value));
      if (!fits) fail(`threw an unexpected error: ${error?.name} ${error?.message}`);
      return;
    }
    fail("expected an exception");
  },
  async rejects(promise, check) {
    try {
      await promise;
    } catch (error) {
      if (check && !check(error)) fail(`rejected with an unexpected error: ${error?.name} ${error?.message} (code ${error?.code})`);
      return;
    }
    fail("expected a rejection");
  },
};
