// Once a second, what the browser's WebRTC stack says about the call (RTCPeerConnection.getStats()).

const PERIOD_MS = 1000;

export class Diagnostics {
  // render(summary) gets a summary (see `summarise`) every second while a peer connection exists.
  constructor(render) {
    this.render = render;
    this.timer = null;
  }

  start(currentPc) {
    this.timer = setInterval(() => {
      currentPc()?.getStats()
        .then((report) => this.render(summarise(report)))
        .catch(() => {}); // the connection closed meanwhile (a resume replaces it): the next tick asks the new one
    }, PERIOD_MS);
  }

  stop() {
    clearInterval(this.timer);
  }
}

// The figures that say whether the call sounds right. Counters belong to one peer connection: they start
// again from zero when the call resumes over a new one.
export function summarise(report) {
  const stats = new Map();
  report.forEach((s) => stats.set(s.id, s));
  const all = [...stats.values()];
  const inbound = all.find((s) => s.type === "inbound-rtp" && s.kind === "audio");
  const pair = selectedPair(stats, all);
  const local = stats.get(pair?.localCandidateId);
  const remote = stats.get(pair?.remoteCandidateId);
  return {
    at: Date.now(),
    rttMs: pair?.currentRoundTripTime === undefined ? null : pair.currentRoundTripTime * 1000,
    jitterMs: inbound?.jitter === undefined ? null : inbound.jitter * 1000,
    packetsReceived: inbound?.packetsReceived ?? null,
    packetsLost: inbound?.packetsLost ?? null,
    totalSamplesReceived: inbound?.totalSamplesReceived ?? null,
    concealedSamples: inbound?.concealedSamples ?? null,
    totalAudioEnergy: inbound?.totalAudioEnergy ?? null,
    codec: stats.get(inbound?.codecId)?.mimeType ?? null,
    local: local ? { address: local.address, port: local.port, protocol: local.protocol } : null,
    remote: remote ? { address: remote.address, port: remote.port, protocol: remote.protocol } : null,
  };
}

// The transport names the pair in use; browsers that do not say fall back to the nominated, working one.
function selectedPair(stats, all) {
  const transport = all.find((s) => s.type === "transport" && s.selectedCandidatePairId);
  return stats.get(transport?.selectedCandidatePairId)
    ?? all.find((s) => s.type === "candidate-pair" && s.nominated && s.state === "succeeded");
}
