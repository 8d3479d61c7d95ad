// The errors ws2s.js reports (shared by its ws2s-protocol sockets and its Wisp sockets).

/**
 * An error the ws2s server reported: `code` is the protocol's (2 connect failed, 3 no connection, 4 refused,
 * 5 closed, 6 ssh, 7 bad request, 8 TLS failed). For code 4 from connect(), `hint` names the config keys
 * that would allow the destination (see refusalHint).
 */
export class Ws2sError extends Error {
  constructor(code, message, hint) {
    super(message);
    this.name = "Ws2sError";
    this.code = code;
    if (hint) this.hint = hint;
  }
}

/**
 * The WebSocket to the ws2s server did not open. The WebSocket API hides the HTTP status, so the library
 * asks the server why (GET /.ws2s/admission): `status` and `refusal` are its answer (401 token, 403 origin,
 * 421 host name) when it gave one; the message says what to check when it did not.
 */
export class Ws2sOpenError extends Error {
  constructor(url, message, status, refusal) {
    super(message);
    this.name = "Ws2sOpenError";
    this.url = url;
    if (status !== undefined) {
      this.status = status;
      this.refusal = refusal;
    }
  }
}
