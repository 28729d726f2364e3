// The benchmarks' load client: many socket.io-client connections from ONE separate process.
//
//   node bench/peer/load.js <config.json>
//
// The Python orchestrator (bench/*.py) writes the config, reads "mark <name>" lines (it samples
// the server's CPU time and memory there) and answers each with a line on stdin before the next
// phase starts; the last line is "result <json>". Every loop here is bounded in count and time.
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
  return { count: sorted.length, p50: at(0.5), p90: at(0.9), p99: at(0.99), max: at(1) };
}

function connect(namespace, auth) {
  return io(config.url + namespace, {
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
  for (let i = 0; i < config.clients; i++) sockets.push(connect("/relay", {}));
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

// -- classroom: join storm, memory, presence latency, completion gate, abrupt disconnect -------------
async function classroom() {
  const sessions = config.sessions;
  const result = {};
  await mark("idle");
  // Join storm: every participant connects, authenticates and joins, all at once.
  const people = [];
  for (const s of sessions) {
    people.push({ session: s, role: "tutor", token: s.tutor_token, user: s.tutor_id });
    people.push({ session: s, role: "student", token: s.student_token, user: s.student_id });
  }
  const joinAcks = [];
  const connectTimes = [];
  let joinFailures = 0;
  const stormStart = now();
  await Promise.all(
    people.map(async (p) => {
      const t0 = now();
      p.presence = [];
      p.waiters = [];
      p.socket = connect("/classroom", { token: p.token });
      p.socket.on("presence", (snapshot) => {
        p.presence.push(snapshot);
        for (const w of p.waiters.splice(0)) w(snapshot);
      });
      try {
        await connected(p.socket, 30000);
        connectTimes.push(now() - t0);
        const t1 = now();
        const ack = await call(p.socket, "join", { session_id: p.session.id }, 30000);
        if (!ack || !ack.ok) throw new Error(JSON.stringify(ack));
        joinAcks.push(now() - t1);
        p.joined = true;
      } catch (err) {
        joinFailures += 1;
        if (joinFailures < 4) process.stderr.write(`load: join failed: ${err}\n`);
      }
    }),
  );
  result.join_storm = {
    clients: people.length,
    total_ms: now() - stormStart,
    connect: summary(connectTimes),
    join_ack: summary(joinAcks),
    failures: joinFailures,
  };
  await sleep(1000);
  await mark("joined");

  const byRoom = new Map();
  for (const p of people) {
    const room = byRoom.get(p.session.id) || {};
    room[p.role] = p;
    byRoom.set(p.session.id, room);
  }
  const rooms = [...byRoom.values()].filter((r) => r.tutor.joined && r.student.joined);
  const disconnectRooms = rooms.slice(rooms.length - config.disconnect_rooms);
  const liveRooms = rooms.slice(0, rooms.length - config.disconnect_rooms);

  const untilPresence = (p, predicate, timeoutMs) =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("presence timeout")), timeoutMs);
      timer.unref();
      const check = (snapshot) => {
        if (predicate(snapshot)) {
          clearTimeout(timer);
          resolve(now());
        } else {
          p.waiters.push(check);
        }
      };
      p.waiters.push(check);
    });
  const without = (userId) => (snapshot) =>
    !snapshot.participants.some((x) => x.user_id === userId);

  // Presence: the student leaves; how long until the tutor sees it. Paced, one room at a time.
  const presence = [];
  let presenceFailures = 0;
  const gap = 1000 / config.leave_rate;
  await Promise.all(
    liveRooms.map(async (room, index) => {
      await sleep(index * gap);
      const seen = untilPresence(room.tutor, without(room.student.user), 10000);
      seen.catch(() => {});
      const t0 = now();
      try {
        await call(room.student.socket, "leave_call", {});
        presence.push((await seen) - t0);
      } catch {
        presenceFailures += 1;
      }
    }),
  );
  result.presence = { rooms: liveRooms.length, latency: summary(presence), failures: presenceFailures };
  await mark("left");

  // Completion gate: the tutor logs time and leaves (the student is out). Paced.
  const gate = [];
  let gateFailures = 0;
  const gateGap = 1000 / config.gate_rate;
  await Promise.all(
    liveRooms.map(async (room, index) => {
      await sleep(index * gateGap);
      const t0 = now();
      try {
        const ack = await call(room.tutor.socket, "log_time_and_leave", {
          minutes: 5,
          recap: config.recap,
        });
        if (!ack || !ack.ok) throw new Error(JSON.stringify(ack));
        gate.push(now() - t0);
      } catch (err) {
        gateFailures += 1;
        if (gateFailures < 4) process.stderr.write(`load: completion failed: ${err}\n`);
      }
    }),
  );
  result.gate = { rooms: liveRooms.length, ack: summary(gate), failures: gateFailures };
  await mark("completed");

  // Abrupt disconnect: half drop the TCP connection (reset), half go silent (no bytes either way).
  const announced = { reset: [], silent: [] };
  let disconnectFailures = 0;
  await Promise.all(
    disconnectRooms.map(async (room, index) => {
      const kind = index % 2 === 0 ? "reset" : "silent";
      const seen = untilPresence(room.tutor, without(room.student.user), config.grace_s * 1000 + 20000);
      seen.catch(() => {});
      const engine = room.student.socket.io.engine;
      const tcp = engine.transport.ws._socket;
      const t0 = now();
      if (kind === "reset") {
        tcp.resetAndDestroy ? tcp.resetAndDestroy() : tcp.destroy();
      } else {
        tcp.pause();
        tcp.write = () => true;
        engine.removeAllListeners();
      }
      try {
        announced[kind].push((await seen) - t0);
      } catch {
        disconnectFailures += 1;
      }
    }),
  );
  result.disconnect = {
    grace_s: config.grace_s,
    reset: summary(announced.reset),
    silent: summary(announced.silent),
    failures: disconnectFailures,
  };
  for (const p of people) p.socket.disconnect();
  return result;
}

async function main() {
  const result = config.kind === "relay" ? await relay() : await classroom();
  process.stdout.write(`result ${JSON.stringify(result)}\n`);
  stdin.close();
  setTimeout(() => process.exit(0), 200);
}

main().catch((err) => {
  process.stderr.write(`load: ${err && err.stack ? err.stack : err}\n`);
  process.exit(2);
});
