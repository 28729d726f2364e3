// Audio and video with the server: one RTCPeerConnection per classroom visit, negotiated over the
// /classroom socket (docs/protocol.md, "Media (WebRTC)"). No DOM in this module.
//
// The browser publishes its camera and microphone on send-only transceivers and offers first.
// The server forwards the other participants' tracks on its own send-only transceivers and
// renegotiates with server offers (`media_offer`), each listing which participant every `mid`
// carries. The server is the impolite side: on glare the browser rolls back and answers.

const MAX_RESTARTS = 3;
// Refusals after which the server has reset its side: offer again from a new connection.
const RESET_CODES = new Set(["invalid_sdp", "invalid_candidate"]);

export const MEDIA_EVENTS = {
  offer: "media_offer", // browser → server (ack: answer) and server → browser (an offer)
  answer: "media_answer", // browser → server: the answer to a server offer
  candidate: "media_candidate", // browser → server: a trickled ICE candidate
};

/** Ask for camera and microphone; fall back to microphone only, then to nothing. */
export async function openLocalMedia() {
  const attempts = [
    {
      audio: true,
      video: { width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: 24 } },
    },
    { audio: true, video: false },
  ];
  let lastError = null;
  for (const constraints of attempts) {
    try {
      return { stream: await navigator.mediaDevices.getUserMedia(constraints), error: null };
    } catch (err) {
      lastError = err;
    }
  }
  return { stream: null, error: lastError };
}

/**
 * The media link of one participant. Emits (EventTarget):
 * - `remotes`: detail = Map(userId → {name, stream, kinds}) after every change
 * - `state`: detail = the RTCPeerConnection's connectionState
 * - `error`: detail = an Error (a refused negotiation)
 */
export class MediaLink extends EventTarget {
  constructor(conn, { iceServers = [], localStream = null } = {}) {
    super();
    this.conn = conn;
    this.iceServers = iceServers;
    this.localStream = localStream;
    this.pc = null;
    this.trackInfo = new Map(); // mid → {user_id, name, kind}
    this.remotes = new Map(); // user_id → {name, stream}
    this.queue = Promise.resolve();
    this.pendingCandidates = null; // buffered until the server has our offer
    this.lastServerOffer = null;
    this.closed = false;
    this.restarts = 0;
    this.offAll = [
      conn.on(MEDIA_EVENTS.offer, (offer) => this._enqueue(() => this._answerServer(offer))),
    ];
  }

  /** Open the peer connection and publish the local tracks. */
  start() {
    return this._enqueue(() => this._connect());
  }

  /** Start over with a fresh peer connection (after a failure or a reset by the server). */
  restart() {
    return this._enqueue(() => this._connect());
  }

  /**
   * After the socket came back: offer again on the same connection while it still works, so a
   * server offer sent while we were away comes back as `glare` and is answered (docs/protocol.md,
   * Glare); start over only when the connection itself is gone.
   */
  resume() {
    return this._enqueue(() => {
      const pc = this.pc;
      if (
        pc &&
        !["failed", "closed"].includes(pc.connectionState) &&
        pc.signalingState === "stable"
      ) {
        return this._offer(pc);
      }
      return this._connect();
    });
  }

  _enqueue(task) {
    const run = this.queue.then(() => (this.closed ? undefined : task()));
    this.queue = run.catch((err) => this._fail(err));
    return run;
  }

  _fail(err) {
    if (this.closed) return;
    if (RESET_CODES.has(err?.code) && this.restarts < MAX_RESTARTS) {
      // The server reset its side of the connection: start over from a new one.
      this.restarts += 1;
      this.restart();
      return;
    }
    this.dispatchEvent(new CustomEvent("error", { detail: err }));
  }

  async _connect() {
    this._closePeer();
    const pc = new RTCPeerConnection({ iceServers: this.iceServers });
    this.pc = pc;
    this.lastServerOffer = null;
    this.trackInfo = new Map();
    const tracks = this.localStream ? this.localStream.getTracks() : [];
    for (const track of tracks) {
      pc.addTransceiver(track, { direction: "sendonly", streams: [this.localStream] });
    }
    // With no camera or microphone the offer carries no track at all: this browser only receives.
    pc.addEventListener("icecandidate", (event) => {
      if (pc !== this.pc) return;
      const candidate = event.candidate ? event.candidate.toJSON() : null;
      if (this.pendingCandidates) this.pendingCandidates.push(candidate);
      else this._sendCandidate(candidate);
    });
    pc.addEventListener("track", () => this._syncRemotes());
    pc.addEventListener("connectionstatechange", () => {
      if (pc !== this.pc) return;
      this.dispatchEvent(new CustomEvent("state", { detail: pc.connectionState }));
      if (pc.connectionState === "failed" && this.restarts < MAX_RESTARTS) {
        this.restarts += 1;
        this.restart();
      } else if (pc.connectionState === "connected") {
        this.restarts = 0;
      }
    });
    this.pendingCandidates = [];
    await this._offer(pc);
  }

  async _offer(pc) {
    await pc.setLocalDescription(await pc.createOffer());
    let ack;
    try {
      ack = await this.conn.call(MEDIA_EVENTS.offer, {
        sdp: pc.localDescription.sdp,
        type: "offer",
      });
    } catch (err) {
      if (err.code === "glare" && err.details?.offer && pc === this.pc) {
        // The server offered at the same moment: take back ours, answer theirs, offer again.
        await pc.setLocalDescription({ type: "rollback" });
        await this._answerServer(err.details.offer);
        return this._offer(pc);
      }
      throw err;
    }
    if (pc !== this.pc) return;
    this._learnTracks(ack.tracks);
    await pc.setRemoteDescription({ type: "answer", sdp: ack.answer.sdp });
    this._syncRemotes();
    const buffered = this.pendingCandidates ?? [];
    this.pendingCandidates = null;
    for (const candidate of buffered) this._sendCandidate(candidate);
  }

  async _answerServer(offer) {
    const pc = this.pc;
    if (!pc || !offer?.sdp || offer.sdp === this.lastServerOffer) return;
    if (pc.signalingState !== "stable") {
      // Only happens while our own offer waits for its answer: the glare answer handles it.
      return;
    }
    this.lastServerOffer = offer.sdp;
    this._learnTracks(offer.tracks);
    await pc.setRemoteDescription({ type: "offer", sdp: offer.sdp });
    await pc.setLocalDescription(await pc.createAnswer());
    this._syncRemotes();
    await this.conn.call(MEDIA_EVENTS.answer, { sdp: pc.localDescription.sdp, type: "answer" });
  }

  _learnTracks(tracks) {
    if (!Array.isArray(tracks)) return;
    this.trackInfo = new Map(tracks.map((t) => [String(t.mid), t]));
  }

  _sendCandidate(candidate) {
    this.conn.call(MEDIA_EVENTS.candidate, { candidate }).catch((err) => this._fail(err));
  }

  /** Rebuild each remote participant's stream from the transceivers the server assigned. */
  _syncRemotes() {
    const pc = this.pc;
    if (!pc) return;
    const wanted = new Map();
    for (const transceiver of pc.getTransceivers()) {
      const info = transceiver.mid == null ? null : this.trackInfo.get(String(transceiver.mid));
      const track = transceiver.receiver?.track;
      if (!info || !track || transceiver.direction === "sendonly") continue;
      if (!wanted.has(info.user_id)) wanted.set(info.user_id, { name: info.name, tracks: [] });
      wanted.get(info.user_id).tracks.push(track);
    }
    let changed = false;
    for (const [userId, { name, tracks }] of wanted) {
      const current = this.remotes.get(userId);
      const same =
        current &&
        current.stream.getTracks().length === tracks.length &&
        tracks.every((t) => current.stream.getTracks().includes(t));
      if (!same) {
        this.remotes.set(userId, { name, stream: new MediaStream(tracks) });
        changed = true;
      }
    }
    for (const userId of [...this.remotes.keys()]) {
      if (!wanted.has(userId)) {
        this.remotes.delete(userId);
        changed = true;
      }
    }
    if (changed) this.dispatchEvent(new CustomEvent("remotes", { detail: this.remotes }));
  }

  setEnabled(kind, enabled) {
    for (const track of this.localStream?.getTracks() ?? []) {
      if (track.kind === kind) track.enabled = enabled;
    }
  }

  /** Received video per participant, from RTCPeerConnection.getStats(). */
  async videoStats() {
    const pc = this.pc;
    if (!pc) return [];
    const report = await pc.getStats();
    const byTrack = new Map();
    for (const transceiver of pc.getTransceivers()) {
      const info = transceiver.mid == null ? null : this.trackInfo.get(String(transceiver.mid));
      if (info) byTrack.set(String(transceiver.mid), info);
    }
    const result = [];
    report.forEach((entry) => {
      if (entry.type !== "inbound-rtp" || entry.kind !== "video") return;
      const info = byTrack.get(String(entry.mid));
      result.push({
        userId: info?.user_id ?? null,
        name: info?.name ?? null,
        mid: entry.mid ?? null,
        framesDecoded: entry.framesDecoded ?? 0,
        bytesReceived: entry.bytesReceived ?? 0,
      });
    });
    return result;
  }

  _closePeer() {
    if (this.pc) {
      const pc = this.pc;
      this.pc = null;
      pc.close();
    }
    if (this.remotes.size) {
      this.remotes.clear();
      this.dispatchEvent(new CustomEvent("remotes", { detail: this.remotes }));
    }
  }

  /** Close the connection and stop the camera and microphone; idempotent. */
  close() {
    if (this.closed) return;
    this.closed = true;
    for (const off of this.offAll) off();
    this._closePeer();
    for (const track of this.localStream?.getTracks() ?? []) track.stop();
  }
}
