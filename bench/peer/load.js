// The benchmarks' load client: many socket.io-client connections from ONE separate process.
//
//   node bench/peer/load.js <config.json>
//
// The Python orchestrator (bench/*.py) writes the config, reads "mark <name>" lines (it samples
// the server's CPU time and memory there) and answers each with a line on stdin before the next
// phase starts; the last line is "result <json>". Every loop here is bounded in count and time.
// The relay's load is here; the classroom's (join storm, presence, completion gate, abrupt
// disconnect, memory steps) is in classroom.js.
"use strict";

const fs = require("fs");
const readline = require("readline");
const { io } = require("socket.io-client");

const config = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const HARD_LIMIT_MS = (config.hard_limit_s || 120) * 1000;
setTimeout(() => {
  process.stderr.write("load: hard time limit reached\n");
  process.exit(3);
}, HARD_LIMIT_MS).unref();

const now = () => Number(process.hrtime.bigint()) / 1e6; // milliseconds
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const stdin = readline.createInterface({ input: process.stdin });
const lines = stdin[Symbol.asyncIterator]();

async function mark(name) {
  process.stdout.write(`mark ${name}\n`);
  const { value, done } = await lines.next();
  if (done || value.trim() !== "go") throw new Error(`orchestrator stopped at ${name}`);
}

function summary(values) {
  const sorted = Float64Array.from(values).sort();
  const at = (q) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] : null);
  return { count: sorted.length, min: at(0), p50: at(0.5), p90: at(0.9), p99: at(0.99), max: at(1) };
}

function connect(base, namespace, auth) {
  return io(base + namespace, {
    transports: ["websocket"],
    forceNew: true,
    reconnection: false,
    timeout: 10000,
    auth,
  });
}

function connected(socket, timeoutMs) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("connect timeout")), timeoutMs);
    socket.once("connect", () => {
      clearTimeout(timer);
      resolve();
    });
    socket.once("connect_error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

function call(socket, event, data, timeoutMs = 10000) {
  return socket.timeout(timeoutMs).emitWithAck(event, data);
}

// -- relay: pairs of clients in rooms; throughput (windowed) or paced latency ----------------------
async function relay() {
  const pairs = config.clients / 2;
  const sockets = [];
  for (let i = 0; i < config.clients; i++) sockets.push(connect(config.url, "/relay", {}));
  await Promise.all(sockets.map((s) => connected(s, 20000)));
  await Promise.all(sockets.map((s, i) => call(s, "join", { room: `r${i % pairs}` })));
  const payload = "x".repeat(config.payload_bytes || 100);
  let measuring = false;
  let delivered = 0;
  const latencies = [];
  for (const s of sockets) {
    s.on("relay", (data) => {
      if (!measuring) return;
      delivered += 1;
      if (data.t !== undefined) latencies.push(now() - data.t);
    });
  }
  let failures = 0;
  if (config.mode === "throughput") {
    let running = true;
    const window = config.window || 4;
    const pump = async (s, i) => {
      while (running) {
        try {
          await call(s, "relay", { room: `r${i % pairs}`, from: i, payload });
        } catch {
          failures += 1;
        }
      }
    };
    const pumps = [];
    for (let w = 0; w < window; w++) sockets.forEach((s, i) => pumps.push(pump(s, i)));
    await sleep(config.warmup_s * 1000);
    measuring = true;
    await mark("start");
    const started = now();
    await sleep(config.duration_s * 1000);
    measuring = false;
    const elapsed = now() - started;
    const count = delivered;
    await mark("end");
    running = false;
    await Promise.race([Promise.all(pumps), sleep(5000)]);
    return { delivered: count, elapsed_ms: elapsed, failures };
  }
  // latency: `rate` relays per second in total, round-robin over the senders
  const rate = config.rate;
  const total = Math.round(rate * (config.warmup_s + config.duration_s));
  const warmupCount = Math.round(rate * config.warmup_s);
  const acks = [];
  const started = now();
  let sent = 0;
  const inflight = [];
  while (sent < total && now() - started < (config.warmup_s + config.duration_s + 5) * 1000) {
    const due = Math.min(total, Math.floor(((now() - started) / 1000) * rate));
    while (sent < due) {
      const i = (sent * 7919) % config.clients;
      if (sent === warmupCount) {
        measuring = true;
        process.stdout.write("mark-nowait start\n");
      }
      const t = now();
      const measured = measuring;
      inflight.push(
        call(sockets[i], "relay", { room: `r${i % pairs}`, from: i, t, payload }).then(
          () => measured && acks.push(now() - t),
          () => (failures += 1),
        ),
      );
      sent += 1;
    }
    await sleep(1);
  }
  await Promise.race([Promise.all(inflight), sleep(5000)]);
  measuring = false;
  process.stdout.write("mark-nowait end\n");
  for (const s of sockets) s.disconnect();
  return { delivery: summary(latencies), ack: summary(acks), sent, failures };
}

async function main() {
  const helpers = { config, mark, summary, connect, connected, call, sleep, now };
  const { classroom, memory } = require("./classroom.js")(helpers);
  const kinds = { relay, classroom, memory };
  const result = await kinds[config.kind]();
  process.stdout.write(`result ${JSON.stringify(result)}\n`);
  stdin.close();
  setTimeout(() => process.exit(0), 200);
}

main().catch((err) => {
  process.stderr.write(`load: ${err && err.stack ? err.stack : err}\n`);
  process.exit(2);
});
