"""Connectors to SIP-to-WebRTC bridges: `gateway sip-bridge` joins Janus's SIP plugin to the gateway over HTTP."""
