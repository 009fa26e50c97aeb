// The gateway's HTTP API (README "HTTP API"), and its failures in plain words.

export class GatewayError extends Error {
  constructor(status, code, message, retryAfter = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

// No HTTP answer came back at all: the gateway is down, or the network between us is.
export class GatewayUnreachable extends Error {}

// A client token is a JWT (three dot-separated parts); an API token never belongs in a page.
export function isClientToken(token) {
  return /^[\w-]+\.[\w-]+\.[\w-]+$/.test(token);
}

export class GatewayApi {
  // `token`: the client token a backend minted for this page (README "Access"), or null on an open gateway.
  constructor(token) {
    this.token = token;
  }

  profiles() {
    return this.request("GET", "/v1/profiles");
  }

  // A new call: {type: "offer", sdp, profile} -> {call_id, sdp, resume_token}.
  createCall(sdp, profile) {
    return this.request("POST", "/v1/calls", { type: "offer", sdp, profile });
  }

  // The same call over a new peer connection; the answer carries the next (single-use) token.
  resumeCall(sdp, callId, token) {
    return this.request("POST", "/v1/calls", { type: "offer", sdp, resume: { call_id: callId, token } });
  }

  // With the call's resume token, which outlives the (short-lived) client token that created the call.
  endCall(callId, resumeToken) {
    return this.request("DELETE", `/v1/calls/${encodeURIComponent(callId)}`, undefined, resumeToken);
  }

  // For `pagehide`: a normal fetch is cancelled when the page goes away, a keepalive one is not.
  endCallOnUnload(callId, resumeToken) {
    const init = { method: "DELETE", headers: this.headers(false, resumeToken), keepalive: true };
    fetch(`/v1/calls/${encodeURIComponent(callId)}`, init).catch(() => {}); // nobody is left to tell
  }

  headers(json = false, token = this.token) {
    const headers = {};
    if (json) headers["Content-Type"] = "application/json";
    if (token) headers.Authorization = `Bearer ${token}`;
    return headers;
  }

  // Resolves with the JSON body (null for 204); throws GatewayError for an error answer, GatewayUnreachable
  // when there is no answer.
  async request(method, path, body, token = this.token) {
    let response;
    try {
      response = await fetch(path, {
        method,
        headers: this.headers(body !== undefined, token),
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (error) {
      throw new GatewayUnreachable(error.message); // fetch's TypeError: it says no more than that
    }
    if (response.status === 204) return null;
    const json = await response.json().catch(() => null);
    if (response.ok && json) return json;
    const error = json?.error ?? { code: `http_${response.status}`, message: response.statusText };
    throw new GatewayError(response.status, error.code, error.message, response.headers.get("Retry-After"));
  }
}

// One sentence a user can act on.
export function explain(error) {
  if (error instanceof GatewayUnreachable) {
    return "Cannot reach the gateway: it is not running or the network is down. Check that it is up, then try again.";
  }
  if (!(error instanceof GatewayError)) return `Something went wrong in this page: ${error.message}`;
  const wait = error.retryAfter ? ` Try again in ${error.retryAfter} s.` : " Try again later.";
  switch (error.code) {
    case "unauthorized":
      return "Not authorised: this gateway needs a client token. "
        + "Open this page from your app, which mints one for you (or add ?token=… to its address).";
    case "forbidden":
      return "Not authorised: the gateway refused this access token.";
    case "token_expired":
      return "This page's access token has expired: open the page from your app again for a new one.";
    case "token_used_up":
      return "This page's access token has placed all the calls it may: open the page from your app again.";
    case "profile_not_allowed":
      return "This page's access token may not use that profile.";
    case "origin_not_allowed":
      return "This gateway does not take calls from pages on this site.";
    case "at_capacity":
      return `The gateway is busy: it is at its limit of calls.${wait}`;
    case "rate_limited":
      return `Too many calls from your address in a short time.${wait}`;
    case "draining":
      return `The gateway is shutting down and takes no new calls.${wait}`;
    default:
      return `The gateway refused the request (${error.status} ${error.code}): ${error.message}`;
  }
}
