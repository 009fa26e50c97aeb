// Level meters for the microphone and the model (Web Audio AnalyserNodes), and the latency they let the page
// measure: from the end of the user's speech (or a typed message) to the first reply audio heard.

export const SPEECH_DBFS = -50; // above this, someone is talking
const TICK_MS = 20;
const FLOOR_DBFS = -100;

export class Meters {
  // render(micDb, modelDb) draws the meters; onLatency(ms, kind) gets each measured reply latency.
  constructor(render, onLatency) {
    this.render = render;
    this.onLatency = onLatency;
    this.context = null;
    this.mic = null;
    this.model = null;
    this.timer = null;
    this.waitingSince = null; // when the user's last turn ended (speech or text), until the reply starts
    this.waitingFor = null; // "speech" or "text"
    this.modelSpeaking = false;
  }

  // Call in the Connect click itself, before anything is awaited: browsers keep an AudioContext made outside
  // a user gesture suspended (Safari counts only the gesture's own task).
  open() {
    this.context = new AudioContext();
  }

  start(micStream) {
    this.mic = this.analyse(micStream);
    this.timer = setInterval(() => this.tick(), TICK_MS);
  }

  // Chromium quirk: it decodes a remote WebRTC track only while the track plays in a media element; Web Audio
  // alone gets silence from it (and getStats() counts no samples received). The page's <audio> element plays
  // the stream, so the analyser hears it too.
  setRemote(stream) {
    this.model?.source.disconnect();
    this.model = this.analyse(stream);
  }

  textSent() {
    this.waitingSince = performance.now();
    this.waitingFor = "text";
  }

  stop() {
    clearInterval(this.timer);
    this.context?.close();
    this.context = this.mic = this.model = null;
    this.waitingSince = null;
    this.modelSpeaking = false;
    this.render(FLOOR_DBFS, FLOOR_DBFS);
  }

  // The analysers are not connected to the output: the <audio> element plays the model, and the user should
  // not hear their own microphone.
  analyse(stream) {
    const source = this.context.createMediaStreamSource(stream);
    const analyser = this.context.createAnalyser();
    analyser.fftSize = 1024; // about 21 ms at 48 kHz: one tick's worth
    source.connect(analyser);
    return { source, analyser, samples: new Float32Array(analyser.fftSize) };
  }

  tick() {
    const now = performance.now();
    const micDb = levelOf(this.mic);
    const modelDb = levelOf(this.model);
    this.measure(now, micDb > SPEECH_DBFS, modelDb > SPEECH_DBFS);
    this.render(micDb, modelDb);
  }

  // The speech end is the last tick the microphone was loud before the model's level rose; the reply starts
  // at the first loud tick of the model. So the figure includes the network both ways, the gateway, the Live
  // API's end-of-turn detection and the browser's jitter buffer, to within a tick or two (20-40 ms).
  measure(now, micLoud, modelLoud) {
    if (micLoud) {
      this.waitingSince = now;
      this.waitingFor = "speech";
    }
    const replyStarted = modelLoud && !this.modelSpeaking;
    this.modelSpeaking = modelLoud;
    if (replyStarted && !micLoud && this.waitingSince !== null) {
      this.onLatency(now - this.waitingSince, this.waitingFor);
      this.waitingSince = null;
    }
  }
}

function levelOf(meter) {
  if (!meter) return FLOOR_DBFS;
  meter.analyser.getFloatTimeDomainData(meter.samples);
  let sum = 0;
  for (const x of meter.samples) sum += x * x;
  const rms = Math.sqrt(sum / meter.samples.length);
  return Math.max(FLOOR_DBFS, 20 * Math.log10(rms || 1e-10));
}
