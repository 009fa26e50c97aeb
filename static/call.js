// One call through the gateway: its peer connection (replaced when the call resumes), the `events` data
// channel, keep-alive pings, and the resume when the connection to the gateway fails or its replica drains.

import { GatewayError, GatewayUnreachable } from "./api.js";

const GATHERING_TIMEOUT_MS = 3000;
const PING_INTERVAL_MS = 1000; // the gateway detaches a caller it has not heard from for 4 s
const DISCONNECTED_PATIENCE_MS = 2000; // "disconnected" often heals by itself; resume if it lasts longer
const RESUME_RETRY_MS = 1000;
const RESUME_GIVE_UP_MS = 60000; // the gateway keeps a call 30 s by default; a 404 says when it is gone
const MAX_QUEUED_EVENTS = 50; // sent while a new events channel is still opening (e.g. just after a resume)

// `handlers`: event(event), remoteStream(stream), connection(state), resuming(why), resumed(), ended(why).
export class Call {
  constructor(api, mic, handlers) {
    this.api = api;
    this.mic = mic;
    this.on = handlers;
    this.pc = null;
    this.channel = null;
    this.queued = []; // events waiting for the events channel to open
    this.id = null;
    this.resumeToken = null;
    this.iceServers = []; // TURN credentials from the last answer, for the next peer connection
    this.resumes = 0; // successful resumes, for the page and for whoever looks at `demo.call`
    this.closed = false; // hung up, ended by the gateway, or beyond saving
    this.hangingUp = false;
    this.resuming = false; // from the failure until the new connection is up
    this.resumeInFlight = false;
    this.pingTimer = null;
    this.disconnectTimer = null;
    this.lastPing = null;
  }

  async start(profile) {
    const offer = await this.newPeerConnection();
    await this.accept(await this.api.createCall(offer, profile));
  }

  // DELETE first, then close: the gateway ends the call on its side and then closes the connection, rather
  // than seeing the caller vanish and holding the call for a resume.
  async hangUp() {
    this.hangingUp = true; // what the gateway says or does from now on is the call ending: nothing to act on
    try {
      await this.api.endCall(this.id, this.resumeToken);
    } catch (error) {
      if (!(error instanceof GatewayError && error.status === 404)) throw error; // 404: it had already ended
    } finally {
      this.close();
    }
  }

  get ending() {
    return this.closed || this.hangingUp;
  }

  close() {
    this.closed = true;
    this.dropPeerConnection();
  }

  // Send an event to the gateway. While a new channel is still opening (the connection is up a moment before
  // it), events wait for it; false when there is no channel to wait for (e.g. while resuming) or too much waits.
  send(event) {
    const state = this.channel?.readyState;
    if (state === "open") {
      this.channel.send(JSON.stringify(event));
      return true;
    }
    if (state !== "connecting" || this.queued.length >= MAX_QUEUED_EVENTS) return false;
    this.queued.push(event);
    return true;
  }

  async newPeerConnection() {
    // The first connection has no ICE servers: the gateway answers with its own candidates (relayed through
    // its TURN server when it has one). A resume uses the TURN credentials the last answer brought.
    const pc = new RTCPeerConnection({ iceServers: this.iceServers });
    for (const track of this.mic.getAudioTracks()) pc.addTrack(track, this.mic);
    // The gateway uses the events channel only if the offer has it: create it before the offer.
    const channel = pc.createDataChannel("events");
    this.pc = pc;
    this.channel = channel;
    this.watch(pc, channel);
    await pc.setLocalDescription(await pc.createOffer());
    await iceGatheringComplete(pc);
    return pc.localDescription.sdp;
  }

  async accept(answer) {
    this.id = answer.call_id;
    this.resumeToken = answer.resume_token; // single-use: every answer brings the token for the next resume
    this.iceServers = answer.ice_servers ?? [];
    await this.pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
  }

  dropPeerConnection() {
    clearInterval(this.pingTimer);
    clearTimeout(this.disconnectTimer);
    const pc = this.pc;
    this.pc = null; // first, so that the events of the closing connection are ignored
    this.channel = null;
    this.queued = []; // they were for the channel going away
    pc?.close();
  }

  // Every handler checks that `pc` is still the call's connection (a replaced one may still fire events)
  // and that the call is not ending.
  watch(pc, channel) {
    const current = () => pc === this.pc && !this.ending;
    pc.ontrack = (e) => current() && this.on.remoteStream(e.streams[0] ?? new MediaStream([e.track]));
    pc.onconnectionstatechange = () => current() && this.connectionChanged(pc.connectionState);
    channel.onopen = () => {
      if (!current()) return;
      for (const event of this.queued.splice(0)) channel.send(JSON.stringify(event));
      clearInterval(this.pingTimer);
      this.pingTimer = setInterval(() => this.ping(), PING_INTERVAL_MS);
    };
    channel.onmessage = (m) => current() && this.receive(m.data);
    // The gateway closes the channel of a connection it has given up on (without an `ended` event when the
    // call goes on): that connection is dead even if ICE has not noticed yet.
    channel.onclose = () => current() && this.resume("the gateway closed this connection");
  }

  connectionChanged(state) {
    this.on.connection(state);
    clearTimeout(this.disconnectTimer);
    if (state === "connected" && this.resuming) {
      this.resuming = false;
      this.on.resumed();
    } else if (state === "failed") {
      this.resume("the connection to the gateway failed");
    } else if (state === "disconnected") {
      this.disconnectTimer = setTimeout(() => this.resume("the connection to the gateway was lost"),
        DISCONNECTED_PATIENCE_MS);
    }
  }

  receive(data) {
    const event = JSON.parse(data);
    if (event.type === "pong" && event.id === this.lastPing?.id) event.rtt_ms = performance.now() - this.lastPing.at;
    if (event.type === "ended") this.close();
    this.on.event(event);
    // The gateway's replica is draining: resume now, through the same address, and another replica goes on.
    if (event.type === "migrate") this.resume("the gateway is moving the call to another replica");
  }

  ping() {
    const id = (this.lastPing?.id ?? 0) + 1;
    if (this.send({ type: "ping", id })) this.lastPing = { id, at: performance.now() };
  }

  // A new peer connection for the same call, offered with the resume token. Retried while the gateway is
  // unreachable or busy; a refusal (404: the call is gone, 403: the token is not valid) ends the call.
  async resume(why) {
    if (this.ending || this.resumeInFlight) return;
    this.resumeInFlight = true;
    this.resuming = true;
    this.on.resuming(why);
    const deadline = Date.now() + RESUME_GIVE_UP_MS;
    try {
      while (!this.ending) {
        try {
          this.dropPeerConnection();
          const offer = await this.newPeerConnection();
          if (this.ending) break;
          await this.accept(await this.api.resumeCall(offer, this.id, this.resumeToken));
          this.resumes += 1;
          return;
        } catch (error) {
          if (this.ending) break;
          if (!retryable(error) || Date.now() > deadline) {
            this.close();
            this.on.ended(resumeFailure(error));
            return;
          }
          await new Promise((resolve) => setTimeout(resolve, RESUME_RETRY_MS));
        }
      }
      this.dropPeerConnection(); // hung up while resuming
    } finally {
      this.resumeInFlight = false;
    }
  }
}

function retryable(error) {
  return error instanceof GatewayUnreachable || (error instanceof GatewayError && error.status >= 500);
}

function resumeFailure(error) {
  if (error instanceof GatewayError && error.code === "call_not_found") {
    return "the call could not be resumed: the gateway has ended it (it waits only so long for a caller to come back)";
  }
  if (error instanceof GatewayError) return `the gateway refused to resume the call (${error.code}: ${error.message})`;
  if (error instanceof GatewayUnreachable) return "the gateway could not be reached to resume the call";
  return `the call could not be resumed (${error.message})`;
}

// No trickle ICE: the offer goes out with every candidate, so one POST is the whole exchange (the gateway
// would take trickled candidates by PATCH, at the cost of more requests, and its answer has all of its own).
// Gathering can hang on an odd network interface, so wait a bounded time, then offer what we have.
function iceGatheringComplete(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      pc.removeEventListener("icegatheringstatechange", check);
      resolve();
    };
    const check = () => pc.iceGatheringState === "complete" && done();
    const timer = setTimeout(done, GATHERING_TIMEOUT_MS);
    pc.addEventListener("icegatheringstatechange", check);
  });
}
