"""What the test suites share, and the only test code any test module may import:
private services (services), a running Refract stack (stack), fake Gemini and YouTube
servers (fakes), and test data and helpers by topic (images, bodies, jobs, sse, ...)."""
