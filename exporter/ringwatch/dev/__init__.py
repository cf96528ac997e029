"""Development tools: the demo, the ring simulator and a local DynamoDB-compatible server.

Needs the `demo` extra; nothing outside this package imports it."""
