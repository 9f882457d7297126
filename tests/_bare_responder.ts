/**
 * The ceiling for `deno task bench` (tests/bench.ts): the smallest Deno
 * WebSocket server that speaks just enough of the gateway protocol for
 * tests/_bench_client.ts. No auth, no validation, no state: what Deno itself
 * costs on this machine at this moment.
 *
 *   deno run --v8-flags=<as gw> --allow-net=127.0.0.1 tests/_bare_responder.ts \
 *     --port P [--payload-bytes N]
 *
 * On open it sends a connect.challenge event; a `connect` req gets a small
 * hello-ok; any other req gets one pre-serialised payload of exactly N bytes
 * (the size of gw's `health` answer), with the request id echoed. Prints
 * "listening on ws://127.0.0.1:P" on stdout once it accepts connections.
 *
 * @module
 */
import { parseArgs } from "node:util";

const { values: a } = parseArgs({
  args: Deno.args,
  options: {
    port: { type: "string", default: "0" },
    "payload-bytes": { type: "string", default: "600" },
  },
  strict: true,
});

/** A health-like JSON object of exactly `n` bytes (ASCII, so bytes = chars). */
function payloadOf(n: number): string {
  const head = `{"ok":true,"ts":${Date.now()},"durationMs":0,"pad":"`;
  const tail = '"}';
  return head + "x".repeat(Math.max(0, n - head.length - tail.length)) + tail;
}

const PAYLOAD = payloadOf(Number(a["payload-bytes"]));
const HELLO = JSON.stringify({
  type: "hello-ok",
  protocol: 4,
  policy: { maxPayload: 26214400, maxBufferedBytes: 52428800, tickIntervalMs: 30000 },
});
const RES_HEAD = '{"type":"res","id":';
const OK_PAYLOAD = ',"ok":true,"payload":';
const ID_KEY = '"id":';

Deno.serve({
  hostname: "127.0.0.1",
  port: Number(a.port),
  onListen: ({ port }) => console.log(`listening on ws://127.0.0.1:${port}`),
}, (req) => {
  const { socket, response } = Deno.upgradeWebSocket(req);
  socket.onopen = () => {
    socket.send(
      `{"type":"event","event":"connect.challenge","payload":{"nonce":"${crypto.randomUUID()}","ts":${Date.now()}}}`,
    );
  };
  socket.onmessage = (ev) => {
    const d = ev.data;
    if (typeof d !== "string") return;
    // The id as the client wrote it (a JSON string), up to the next comma.
    const at = d.indexOf(ID_KEY);
    if (at < 0) return;
    const comma = d.indexOf(",", at);
    const id = d.slice(at + ID_KEY.length, comma < 0 ? d.lastIndexOf("}") : comma);
    const body = d.includes('"method":"connect"') ? HELLO : PAYLOAD;
    socket.send(RES_HEAD + id + OK_PAYLOAD + body + "}");
  };
  return response;
});
