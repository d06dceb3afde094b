"""Fixtures of the production topologies (Sentinel, TLS, ACL, CONFIG renamed) and the backend
contract every topology must pass; each server is started on free loopback ports and stopped by PID."""
