// The demo page: a reference client for the gateway, in plain DOM with no framework and no build step.
// api.js speaks HTTP, call.js owns the peer connection and its resume, meters.js and diagnostics.js measure,
// transcript.js draws the conversation. What is worth inspecting from the browser console is on `demo`.

import { GatewayApi, explain, isClientToken } from "./api.js";
import { Call } from "./call.js";
import { Diagnostics } from "./diagnostics.js";
import { Meters, SPEECH_DBFS } from "./meters.js";
import { Transcript } from "./transcript.js";

const $ = (id) => document.getElementById(id);
const LOG_LINES = 80;
const INTERRUPTED_SHOWN_MS = 1500;

const STATES = {
  idle: "not connected",
  connecting: "connecting…",
  listening: "listening",
  speaking: "speaking",
  reconnecting: "reconnecting…",
  ended: "call ended",
};

// The gateway's `ended` reasons, in words (anything else is shown as it comes).
const ENDED = {
  hangup: "it was ended through the gateway's API",
  caller_hangup: "you hung up",
  caller_gone: "this page was away longer than the gateway waits for it",
  idle_timeout: "nothing was said for too long",
  max_duration: "the call reached its maximum length",
  connect_timeout: "the audio never connected",
  server_shutdown: "the gateway shut down",
};

// `?token=` takes a client token only: an API token in an address would end up in histories and logs.
const pageToken = new URLSearchParams(location.search).get("token");
const api = new GatewayApi(pageToken && isClientToken(pageToken) ? pageToken : null);
const transcript = new Transcript($("transcript"));
const meters = new Meters(showLevels, showLatency);
const diagnostics = new Diagnostics(showStats);

// For developers and the browser tests: the demo's state, read-only by convention.
const demo = (window.demo = { call: null, state: "idle", profiles: null, emulator: null, stats: null, latencies: [] });
let gatewayState = "listening"; // the conversation state the gateway last sent; shown again after a resume
let interruptedTimer = null;

// ----- profiles -----

async function loadProfiles() {
  if (pageToken && !api.token) {
    say("This page takes a client token in ?token=, minted by your backend (POST /v1/tokens); "
      + "an API token must stay on the backend.", "error");
    return;
  }
  try {
    const answer = await api.profiles();
    demo.profiles = answer.profiles;
    demo.emulator = answer.emulator;
    const options = answer.profiles.map((p) => new Option(p.name, p.name, false, p.name === answer.default));
    $("profile").replaceChildren(...options);
    $("emulator-note").hidden = !answer.emulator;
    describeProfile();
  } catch (error) {
    say(explain(error), "error");
  }
}

function describeProfile() {
  const p = demo.profiles?.find((profile) => profile.name === $("profile").value);
  const facts = p ? [p.description, `model ${p.model}`, p.voice && `voice ${p.voice}`] : [];
  $("profile-info").textContent = facts.filter(Boolean).join(" · ");
}

// ----- connecting and hanging up -----

async function connect(submit) {
  submit.preventDefault();
  meters.open();
  setControls("busy");
  demo.call = null;
  demo.latencies = [];
  gatewayState = "listening";
  transcript.clear();
  clearDiagnostics();
  showState("connecting");
  say("Asking for the microphone…");
  const mic = await openMicrophone();
  if (!mic) return;
  meters.start(mic);
  const call = (demo.call = new Call(api, mic, callHandlers));
  say("Connecting to the gateway…");
  try {
    await call.start($("profile").value || undefined);
  } catch (error) {
    finish(explain(error), "error", "idle");
    return;
  }
  log(`call ${call.id} answered; waiting for the Live session`);
  diagnostics.start(() => call.pc);
  setControls("in-call");
}

async function openMicrophone() {
  if (!navigator.mediaDevices?.getUserMedia) {
    finish("This browser offers no microphone to this page: open it over https, or at http://127.0.0.1 or localhost.",
      "error", "idle");
    return null;
  }
  try {
    return await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch (error) {
    finish(microphoneProblem(error), "error", "idle");
    return null;
  }
}

function microphoneProblem(error) {
  switch (error.name) {
    case "NotAllowedError":
    case "SecurityError":
      return "Microphone access was denied. "
        + "Allow the microphone for this site (the icon in the address bar), then press Connect again.";
    case "NotFoundError":
      return "No microphone was found. Connect one, then press Connect again.";
    case "NotReadableError":
      return "The microphone could not be started: another application may be using it.";
    default:
      return `The microphone could not be opened (${error.name}: ${error.message}).`;
  }
}

async function hangUp() {
  setControls("busy");
  let message = "Call ended: you hung up.";
  try {
    await demo.call.hangUp();
  } catch (error) {
    message = `Call ended here, but the gateway was not told: ${explain(error)}`;
  }
  finish(message, "warn");
}

// Whatever ended the call (or kept it from starting): release everything and say why.
function finish(message, tone = "info", state = "ended") {
  const call = demo.call;
  if (call) {
    call.close();
    call.mic.getTracks().forEach((track) => track.stop());
  }
  meters.stop();
  diagnostics.stop();
  $("remote-audio").srcObject = null;
  showState(state);
  say(message, tone);
  log(message);
  setControls("idle");
}

// Closing the tab hangs up at once, rather than leaving the gateway waiting for a resume that never comes.
addEventListener("pagehide", () => demo.call && !demo.call.closed
  && api.endCallOnUnload(demo.call.id, demo.call.resumeToken));

// ----- the call -----

const callHandlers = {
  event: onGatewayEvent,
  remoteStream(stream) {
    $("remote-audio").srcObject = stream;
    meters.setRemote(stream);
  },
  connection(state) {
    log(`peer connection ${state}`);
  },
  resuming(why) {
    showState("reconnecting");
    say(`Reconnecting: ${why}. Resuming the call with its resume token…`, "warn");
    log(`resuming: ${why}`);
  },
  resumed() {
    showState(gatewayState);
    say("Resumed: the call goes on over a new connection.", "ok");
    log(`resumed call ${demo.call.id} (resume ${demo.call.resumes})`);
  },
  ended(why) {
    finish(`Call ended: ${why}.`, "error");
  },
};

function onGatewayEvent(event) {
  switch (event.type) {
    case "ready":
      say(`Connected (profile ${event.profile}, model ${event.model}, ${event.codec}). Talk, or type below.`, "ok");
      break;
    case "state":
      showGatewayState(event.state);
      break;
    case "transcript":
      transcript.update(event.role, event.text, event.final);
      if (!event.final) return; // interim text would flood the log
      break;
    case "interrupted":
      showInterruption(event.source);
      break;
    case "tool_call":
      // This page has no tools to run: answer at once rather than let the model wait for the gateway's timeout.
      demo.call.send({ type: "tool_result", id: event.id, result: { error: "the demo page cannot run tools" } });
      break;
    case "error":
      say(`The gateway reported an error (${event.code}): ${event.message}`, "error");
      break;
    case "ended": {
      const reason = event.reason ?? "unknown";
      finish(`Call ended: ${ENDED[reason] ?? reason}.`, reason.endsWith("hangup") ? "info" : "error");
      return;
    }
    case "pong":
      if (event.rtt_ms !== undefined) $("d-ping").textContent = `${event.rtt_ms.toFixed(0)} ms`;
      return;
  }
  log(describe(event));
}

function showGatewayState(state) {
  if (state === "reconnecting") {
    say("The gateway lost its connection to the Live API and is reconnecting…", "warn");
  } else if (gatewayState === "reconnecting") {
    say("The gateway reconnected to the Live API: the conversation goes on.", "ok");
  }
  gatewayState = state;
  if (!demo.call?.resuming) showState(state);
}

function showInterruption(source) {
  transcript.interrupt();
  const badge = $("interrupted");
  badge.textContent = source === "local" ? "interrupted: the gateway heard you" : "interrupted: the model heard you";
  badge.hidden = false;
  clearTimeout(interruptedTimer);
  interruptedTimer = setTimeout(() => (badge.hidden = true), INTERRUPTED_SHOWN_MS);
}

function sendText(submit) {
  submit.preventDefault();
  const text = $("text").value.trim();
  if (!text) return;
  if (!demo.call?.send({ type: "text", text })) {
    say("Not connected right now: the message was not sent.", "warn");
    return;
  }
  meters.textSent();
  $("text").value = "";
  log(`sent text: ${text}`);
}

// ----- what the page shows -----

function showState(state) {
  demo.state = state;
  $("state").dataset.state = state;
  $("state").textContent = STATES[state];
}

function say(text, tone = "info") {
  $("message").textContent = text;
  $("message").dataset.tone = tone;
}

function log(text) {
  const now = new Date();
  const item = document.createElement("li");
  item.textContent = `${now.toTimeString().slice(0, 8)}.${String(now.getMilliseconds()).padStart(3, "0")}  ${text}`;
  $("events").prepend(item);
  $("events").children[LOG_LINES]?.remove();
}

// One line of the log. Resume tokens are credentials for the call: they stay out of it.
function describe(event) {
  const fields = Object.entries(event).filter(([key]) => key !== "type" && key !== "resume_token");
  return [event.type, ...fields.map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)].join(" ");
}

function setControls(mode) {
  $("connect").disabled = mode !== "idle";
  $("profile").disabled = mode !== "idle";
  $("hangup").disabled = mode !== "in-call";
  $("text").disabled = mode !== "in-call";
  $("send").disabled = mode !== "in-call";
}

function showLevels(micDb, modelDb) {
  showLevel("mic", micDb);
  showLevel("model", modelDb);
}

function showLevel(name, db) {
  const meter = $(`${name}-meter`);
  meter.firstElementChild.style.width = `${Math.min(100, Math.max(0, ((db + 60) / 60) * 100))}%`;
  meter.setAttribute("aria-valuenow", db.toFixed(0));
  meter.classList.toggle("active", db > SPEECH_DBFS);
  $(`${name}-db`).textContent = db > -100 ? `${db.toFixed(0)} dBFS` : "–";
}

function showLatency(ms, kind) {
  demo.latencies.push({ ms: Math.round(ms), kind });
  const sorted = demo.latencies.map((l) => l.ms).sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)];
  const after = kind === "text" ? "typed text" : "speech";
  $("d-latency").textContent = `${Math.round(ms)} ms after ${after} (median ${median} ms over ${sorted.length})`;
}

function clearDiagnostics() {
  document.querySelectorAll("#diagnostics td").forEach((cell) => (cell.textContent = "–"));
  demo.stats = null;
}

function showStats(s) {
  demo.stats = s;
  const ms = (value) => (value === null ? "–" : `${value.toFixed(1)} ms`);
  $("d-rtt").textContent = ms(s.rttMs);
  $("d-jitter").textContent = ms(s.jitterMs);
  $("d-packets").textContent = s.packetsReceived === null ? "–" : `${s.packetsReceived} / ${s.packetsLost}`;
  const concealedPct = s.totalSamplesReceived ? ((100 * s.concealedSamples) / s.totalSamplesReceived).toFixed(2) : null;
  $("d-concealed").textContent = concealedPct === null ? "–"
    : `${s.concealedSamples} of ${s.totalSamplesReceived} (${concealedPct} %)`;
  $("d-codec").textContent = s.codec ?? "–";
  $("d-path").textContent = s.local && s.remote
    ? `${s.local.address}:${s.local.port} → ${s.remote.address}:${s.remote.port} (${s.local.protocol})` : "–";
}

// ----- start -----

$("profile").addEventListener("change", describeProfile);
$("setup").addEventListener("submit", connect);
$("hangup").addEventListener("click", hangUp);
$("text-form").addEventListener("submit", sendText);
loadProfiles();
