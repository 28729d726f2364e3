// The classroom's load (see load.js for the protocol with the orchestrator): join storm, presence
// latency, completion gate, abrupt disconnect (bench/classroom.py), memory steps
// (bench/classroom_memory.py). Every loop is bounded in count and time.
"use strict";

const net = require("net");

module.exports = function classroomLoad(helpers) {
  const { config, mark, summary, connect, connected, call, sleep, now } = helpers;

  // config.urls: one base URL per server process. Session i's tutor goes to urls[i % n] and its
  // student to urls[(i + 1) % n]: with two processes every classroom spans both, so presence, the
  // leave the tutor sees and the completion gate cross processes.

  function personsOf(sessions, offset) {
    const urls = config.urls || [config.url];
    const people = [];
    sessions.forEach((session, k) => {
      const index = offset + k;
      const person = (role, token, user, url) => {
        return { session, index, role, token, user, url, presence: [], waiters: [], version: 0 };
      };
      const tutorUrl = urls[index % urls.length];
      const studentUrl = urls[(index + 1) % urls.length];
      people.push(person("tutor", session.tutor_token, session.tutor_id, tutorUrl));
      people.push(person("student", session.student_token, session.student_id, studentUrl));
    });
    return people;
  }

  // Connect, authenticate, join (p.joined); throws if any of it failed or timed out.
  async function joinOne(p, timeoutMs) {
    p.socket = connect(p.connectUrl || p.url, "/classroom", { token: p.token });
    p.socket.on("presence", (snapshot) => {
      p.presence.push(snapshot);
      for (const w of p.waiters.splice(0)) w(snapshot);
    });
    const t0 = now();
    await connected(p.socket, timeoutMs);
    p.connectMs = now() - t0;
    p.socket.io.engine.on("ping", () => (p.lastPing = now()));
    const t1 = now();
    const ack = await call(p.socket, "join", { session_id: p.session.id }, timeoutMs);
    if (!ack || !ack.ok) throw new Error(JSON.stringify(ack));
    p.joinMs = now() - t1;
    p.version = Math.max(p.version, ack.version || 0);
    p.joined = true;
  }

  // The silent drop: the student's connection runs through this relay (in this process); at the
  // drop it stops forwarding in both directions and stops reading the server's side, and never
  // writes, ends or resets that side until the phase is over — from the server's side the peer
  // vanished mid-connection (as when a laptop lid closes): no byte, FIN or RST, only silence. The
  // one difference from a vanished machine: this machine's kernel still acknowledges what the
  // server sends (dropping packets needs a firewall rule); the server learns of the drop from the
  // missing pongs either way.
  function silentRelay(target) {
    const { hostname, port } = new URL(target);
    const relay = { cut: false, up: null, down: null };
    const server = net.createServer((down) => {
      if (relay.down) return down.destroy(); // one connection per relay
      relay.down = down;
      const up = net.connect(Number(port), hostname);
      relay.up = up;
      down.on("data", (chunk) => relay.cut || up.write(chunk));
      up.on("data", (chunk) => relay.cut || down.write(chunk));
      down.on("close", () => relay.cut || up.destroy());
      up.on("close", () => relay.cut || down.destroy());
      down.on("error", () => {});
      up.on("error", () => {});
    });
    relay.drop = () => {
      relay.cut = true;
      if (relay.up) relay.up.pause();
      if (relay.down) relay.down.destroy(); // the client's side of the vanished machine
    };
    relay.close = () => {
      if (relay.closed) return;
      relay.closed = true;
      if (relay.up) relay.up.destroy();
      server.close();
    };
    return new Promise((resolve) =>
      server.listen(0, "127.0.0.1", () => {
        relay.url = `http://127.0.0.1:${server.address().port}`;
        resolve(relay);
      }),
    );
  }

  async function classroom() {
    const result = {};
    const people = personsOf(config.sessions, 0);
    const firstDrop = config.sessions.length - config.disconnect_rooms;
    const relays = [];
    for (const p of people) {
      // The last disconnect_rooms sessions are dropped at the end: even ones by a TCP reset from
      // the student, odd ones by the student going silent (through a relay, see silentRelay).
      if (p.role === "student" && p.index >= firstDrop && (p.index - firstDrop) % 2 === 1) {
        p.relay = await silentRelay(p.url);
        p.connectUrl = p.relay.url;
        relays.push(p.relay);
      }
    }
    try {
      await stormAndPhases(people, firstDrop, result);
    } finally {
      for (const p of people) if (p.socket) p.socket.disconnect();
      for (const r of relays) r.close();
    }
    result.rooms_across_processes = config.sessions.filter((_, i) => {
      const urls = config.urls || [config.url];
      return urls[i % urls.length] !== urls[(i + 1) % urls.length];
    }).length;
    return result;
  }

  async function stormAndPhases(people, firstDrop, result) {
    await mark("idle");
    // Join storm: every participant connects, authenticates and joins, all at once.
    let joinFailures = 0;
    const stormCpu = process.cpuUsage();
    const stormStart = now();
    await Promise.all(
      people.map(async (p) => {
        try {
          await joinOne(p, 30000);
        } catch (err) {
          joinFailures += 1;
          if (joinFailures < 4) process.stderr.write(`load: join failed: ${err}\n`);
        }
      }),
    );
    result.join_storm = {
      clients: people.length,
      total_ms: now() - stormStart,
      // this load process's own CPU over the storm: near total_ms, the client is the limit
      client_cpu_ms: ((c) => (c.user + c.system) / 1000)(process.cpuUsage(stormCpu)),
      connect: summary(people.filter((p) => p.connectMs !== undefined).map((p) => p.connectMs)),
      join_ack: summary(people.filter((p) => p.joined).map((p) => p.joinMs)),
      failures: joinFailures,
      joined: people.filter((p) => p.joined).length,
    };
    await sleep(1000);
    await mark("joined");

    const byRoom = new Map();
    for (const p of people) {
      const room = byRoom.get(p.session.id) || { index: p.index };
      room[p.role] = p;
      byRoom.set(p.session.id, room);
    }
    const rooms = [...byRoom.values()].filter((r) => r.tutor.joined && r.student.joined);
    const disconnectRooms = rooms.filter((r) => r.index >= firstDrop);
    const liveRooms = rooms.filter((r) => r.index < firstDrop);

    // Resolves with the time of the first snapshot newer than any seen before the call that
    // satisfies the predicate.
    const untilPresence = (p, predicate, timeoutMs) => {
      const after = Math.max(p.version, ...p.presence.map((s) => s.version || 0));
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("presence timeout")), timeoutMs);
        timer.unref();
        const check = (snapshot) => {
          if ((snapshot.version || 0) > after && predicate(snapshot)) {
            clearTimeout(timer);
            resolve(now());
          } else {
            p.waiters.push(check);
          }
        };
        p.waiters.push(check);
      });
    };
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
    result.presence = {
      rooms: liveRooms.length,
      latency: summary(presence),
      failures: presenceFailures,
    };
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

    // Abrupt disconnect: the student's TCP connection is reset (RST now), or the student goes
    // silent (see silentRelay). Timed from the drop to the tutor's presence without the student
    // (after the grace). The server notices silence some time after the last pong it read, and its
    // pings to all sockets may run in step (a busy phase before delays every timer to the same
    // moment): the drops of each kind are spread evenly over one ping interval, so that they fall
    // at every point of the ping cycle rather than all at one.
    const announced = { reset: [], silent: [] };
    const drops = [];
    let disconnectFailures = 0;
    const kinds = { reset: [], silent: [] };
    for (const room of disconnectRooms) kinds[room.student.relay ? "silent" : "reset"].push(room);
    const spreadMs = config.ping_interval_s * 1000;
    await Promise.all(
      Object.entries(kinds).flatMap(([kind, list]) =>
        list.map(async (room, k) => {
          await sleep((k * spreadMs) / list.length);
          const limit = config.grace_s * 1000 + 20000;
          const seen = untilPresence(room.tutor, without(room.student.user), limit);
          seen.catch(() => {});
          const t0 = now();
          const drop = { kind, at_ms: t0, since_ping_ms: t0 - (room.student.lastPing ?? NaN) };
          drops.push(drop);
          if (kind === "silent") {
            room.student.relay.drop();
          } else {
            const tcp = room.student.socket.io.engine.transport.ws._socket;
            tcp.resetAndDestroy ? tcp.resetAndDestroy() : tcp.destroy();
          }
          try {
            drop.leave_ms = (await seen) - t0;
            announced[kind].push(drop.leave_ms);
          } catch {
            disconnectFailures += 1;
          }
        }),
      ),
    );
    for (const room of disconnectRooms) if (room.student.relay) room.student.relay.close();
    result.disconnect = {
      grace_s: config.grace_s,
      rooms: disconnectRooms.length,
      reset: summary(announced.reset),
      silent: summary(announced.silent),
      drops, // each: kind, at_ms, since_ping_ms (from the last ping the client read), leave_ms
      spread_ms: spreadMs,
      failures: disconnectFailures,
    };
  }

  // Memory per connected client (a server process of its own, see bench/classroom_memory.py):
  // config.steps steps, each connecting and joining the next share of config.sessions (both
  // participants, config.concurrency at a time) and holding them; "mark mem-<k>" after step k
  // (mem-0 before the first), where the orchestrator waits for the server to be idle and reads
  // its RSS. A client that connected but did not join is disconnected again.
  async function memory() {
    const all = personsOf(config.sessions, 0);
    const perStep = Math.ceil(config.sessions.length / config.steps) * 2;
    const steps = [];
    try {
      await mark("mem-0");
      for (let k = 0; k < config.steps; k++) {
        const clients = all.slice(k * perStep, (k + 1) * perStep);
        const t0 = now();
        let next = 0;
        let failures = 0;
        const worker = async () => {
          while (next < clients.length) {
            const p = clients[next++];
            try {
              await joinOne(p, 30000);
            } catch (err) {
              failures += 1;
              if (failures < 4) process.stderr.write(`load: memory step join failed: ${err}\n`);
              if (p.socket) p.socket.disconnect();
            }
          }
        };
        await Promise.all(Array.from({ length: config.concurrency }, worker));
        const joined = clients.filter((p) => p.joined).length;
        steps.push({ clients: clients.length, joined, failures, ms: now() - t0 });
        await mark(`mem-${k + 1}`);
      }
    } finally {
      for (const p of all) if (p.socket) p.socket.disconnect();
    }
    return { steps };
  }

  return { classroom, memory };
};
