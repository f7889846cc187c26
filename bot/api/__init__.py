"""HTTP routes of the server, one router per area (model, conversations); channels add their own."""
