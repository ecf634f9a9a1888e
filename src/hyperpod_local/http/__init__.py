"""The HTTP transport: uvicorn's protocol with a header deadline and one write per answer.
It knows bytes and connections, nothing of AWS."""
