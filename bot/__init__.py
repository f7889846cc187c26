"""slmbot's runtime: configuration, CLI and the HTTP server around the trained models."""
