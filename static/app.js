// Minimal client: microphone in, reply out, transcripts from the "events" data channel.
const $ = (id) => document.getElementById(id);
let pc = null;
let callId = null;

async function connect() {
  $("connect").disabled = true;
  const mic = await navigator.mediaDevices.getUserMedia({ audio: true });
  pc = new RTCPeerConnection();
  mic.getTracks().forEach((t) => pc.addTrack(t, mic));
  const events = pc.createDataChannel("events");
  events.onmessage = (m) => show(JSON.parse(m.data));
  pc.ontrack = (e) => { const a = new Audio(); a.srcObject = e.streams[0]; a.play(); };
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((r) => (pc.iceGatheringState === "complete" ? r() : (pc.onicegatheringstatechange = () => pc.iceGatheringState === "complete" && r())));
  const res = await fetch("/v1/calls", { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ type: "offer", sdp: pc.localDescription.sdp }) });
  const body = await res.json();
  if (!res.ok) { $("status").textContent = body.error.message; $("connect").disabled = false; return; }
  callId = body.call_id;
  await pc.setRemoteDescription({ type: "answer", sdp: body.sdp });
  $("hangup").disabled = false;
}

function show(event) {
  if (event.type === "state") $("status").textContent = event.state;
  if (event.type === "transcript" && event.final) {
    const li = document.createElement("li");
    li.className = event.role;
    li.textContent = `${event.role}: ${event.text}`;
    $("transcript").append(li);
  }
}

async function hangup() {
  if (callId) await fetch(`/v1/calls/${callId}`, { method: "DELETE" });
  if (pc) pc.close();
  pc = null; callId = null;
  $("hangup").disabled = true; $("connect").disabled = false; $("status").textContent = "Not connected.";
}

$("connect").onclick = connect;
$("hangup").onclick = hangup;
