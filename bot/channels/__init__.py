"""Channel adapters: how users reach the bot (REST now; Telegram and the web widget build on `base`)."""
