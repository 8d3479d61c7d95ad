// A page's script written against ws2s.js 2.1.4's README (a classic script, no modules): every
// callback of its socket wrapper and its redis wrapper, each call written down with its arguments.
// The runners (test/legacy.test.js under Node, test/legacy.html in Chromium) load it after the
// classic build and compare the transcript with test/legacy-2.1.4.expected.json, which is what
// ws2s.js 2.1.4 itself gives.
// params: { url, echoPort, refusedPort, redisPort, redisPassword, deadUrl }. Returns the transcript
// as it grows (to show how far a run got); done(transcript) once every part has run.
function runLegacy(params, done) {
  var transcript = [];
  var note = function () { transcript.push(Array.prototype.slice.call(arguments)); };
  // An error as 2.1.4 passes it: Redis's words or the library's (a string), the server's response
  // (an object), or the WebSocket's error event.
  var shown = function (error) {
    if (typeof error === "string") return error;
    if (error && typeof error.type === "string") return "an event of type " + error.type;
    return { success: error.success, code: error.code, message: error.message };
  };
  var ws2s = new WS2S(params.url);

  // The socket wrapper: echo, then a refused connect.
  var echo = function (next) {
    var socket = ws2s.newSocket();
    var received = "";
    socket.onReady = () => { note("socket.onReady"); socket.connect("127.0.0.1", params.echoPort); };
    socket.onOpen = () => { note("socket.onOpen"); socket.send("hello, "); };
    socket.onRecv = (bytes) => {
      received += new TextDecoder().decode(bytes);
      if (received === "hello, ") { note("socket.onRecv", bytes instanceof Uint8Array, received); socket.sendb(new TextEncoder().encode("bytes")); }
      if (received === "hello, bytes") { note("socket.onRecv", bytes instanceof Uint8Array, received); socket.close(); }
    };
    socket.onClose = () => { note("socket.onClose"); next(); };
    socket.onError = (error) => note("socket.onError", shown(error));
  };
  var refused = function (next) {
    var socket = ws2s.newSocket();
    socket.onReady = () => { note("socket.onReady"); socket.connect("127.0.0.1", params.refusedPort); };
    socket.onOpen = () => note("socket.onOpen");
    socket.onError = (error) => { note("socket.onError", shown(error)); socket.close(); };
    socket.onClose = () => { note("socket.onClose"); next(); };
  };

  // The page is done with a client (2.1.4 has no close: its clients stay open; ws2s.js 3's close says nothing).
  var finish = function (redis, next) {
    redis.onError = redis.onResponse = () => {};
    if (redis.close) redis.close();
    next();
  };

  // The redis wrapper: one request at a time (a page's button clicks), each awaiting its replies.
  var requests = [
    ["ping", 1],
    ['set legacy:name "two words"', 1],
    ["get legacy:name", 1],
    ["get legacy:missing", 1],
    ["incr legacy:n", 1],
    ["rpush legacy:list a b c", 1],
    ["lrange legacy:list 0 -1", 1],
    ["lrange legacy:empty 0 -1", 1],
    ["mget legacy:name legacy:missing", 1],
    ["eval \"return {1,{'a','b'},'c'}\" 0", 1],
    ["incr legacy:name", 1],
    ["get legacy:n\n\nincr legacy:n\nget legacy:n", 3],
    ['ECHO "Hello World!"', 1],
    ["quit", 1],
  ];
  var redisSession = function (next) {
    var redis = ws2s.newRedisCient("127.0.0.1", params.redisPort, params.redisPassword);
    var at = -1;
    var waiting = 1; // AUTH's reply
    var reconnected = false;
    var answered = () => {
      if (--waiting > 0) return;
      if (reconnected) return finish(redis, next);
      at++;
      if (at < requests.length) {
        waiting = requests[at][1];
        note("redis.request", requests[at][0]);
        redis.request(requests[at][0]);
      }
    };
    redis.onSocketReady = () => note("redis.onSocketReady");
    redis.onReady = () => note("redis.onReady");
    redis.onResponse = (data) => { note("redis.onResponse", data); answered(); };
    redis.onError = (error) => { note("redis.onError", shown(error)); answered(); };
    // QUIT closes the connection: 2.1.4 opens a new one by itself (AUTH again) and says so with onReconnected.
    redis.onReconnected = () => {
      note("redis.onReconnected", redis.reconnectCount);
      reconnected = true;
      waiting = 2; // AUTH's reply, then GET's
      note("redis.request", "get legacy:name");
      redis.request("get legacy:name");
    };
  };
  var wrongPassword = function (next) {
    var redis = ws2s.newRedisCient("127.0.0.1", params.redisPort, "not-the-password");
    redis.onSocketReady = () => note("redis.onSocketReady");
    redis.onReady = () => note("redis.onReady");
    redis.onResponse = (data) => note("redis.onResponse", data);
    redis.onError = (error) => { note("redis.onError", shown(error)); finish(redis, next); };
  };
  // Nothing listens at the Redis port: ws2s answers code 2; 2.1.4 closes, opens a new socket, tries
  // again, nine times, then gives up.
  var noRedis = function (next) {
    var redis = ws2s.newRedisCient("127.0.0.1", params.refusedPort);
    redis.onSocketReady = () => note("redis.onSocketReady");
    redis.onReady = () => note("redis.onReady");
    redis.onError = (error) => {
      note("redis.onError", shown(error));
      if (error === "connection loss, max reconnect times reached") next();
    };
  };
  // No ws2s server there: each WebSocket fails, and 2.1.4 tries nine more times, then gives up.
  var noServer = function (next) {
    var redis = new WS2S(params.deadUrl).newRedisCient("127.0.0.1", params.redisPort);
    redis.onSocketReady = () => note("redis.onSocketReady");
    redis.onError = (error) => {
      note("redis.onError", shown(error));
      if (error === "connection loss, max reconnect times reached") next();
    };
  };

  var parts = [echo, refused, redisSession, wrongPassword, noRedis, noServer];
  var run = function (i) {
    if (i === parts.length) return done(transcript);
    parts[i](() => run(i + 1));
  };
  run(0);
  return transcript;
}
