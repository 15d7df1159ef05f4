"""The embedded local stack: moto server, HTTP gateway, queue poller, scheduler and alarm evaluator."""
