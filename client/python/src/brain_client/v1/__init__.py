"""Generated brain.v1 messages and gRPC stubs (client/generate.sh). Do not edit."""
