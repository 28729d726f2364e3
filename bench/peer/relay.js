// The reference relay on Node's socket.io: the same join / relay / ack work as the classroom's
// signaling (bench/relay_server.py), so one load client can drive both in the same run.
//
//   node bench/peer/relay.js <port>      (binds 127.0.0.1 only; prints "ready <port>")
"use strict";

const http = require("http");
const { Server } = require("socket.io");

const port = Number(process.argv[2] || 0);
const httpServer = http.createServer();
const io = new Server(httpServer, {
  transports: ["websocket"],
  perMessageDeflate: false,
  httpCompression: false,
  pingInterval: 2000,
  pingTimeout: 3000,
});

io.of("/relay").on("connection", (socket) => {
  socket.on("join", (data, ack) => {
    if (!data || typeof data.room !== "string") {
      ack({ ok: false, error: { code: "invalid_payload", message: "room is required" } });
      return;
    }
    socket.join("room:" + data.room);
    ack({ ok: true, room: data.room });
  });
  socket.on("relay", (data, ack) => {
    if (!data || typeof data.room !== "string") {
      if (typeof ack === "function") {
        ack({ ok: false, error: { code: "invalid_payload", message: "room is required" } });
      }
      return;
    }
    socket.to("room:" + data.room).emit("relay", data);
    if (typeof ack === "function") ack({ ok: true });
  });
});

httpServer.listen(port, "127.0.0.1", () => {
  process.stdout.write(`ready ${httpServer.address().port}\n`);
});

const stop = () => {
  io.close();
  httpServer.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 1000).unref();
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
