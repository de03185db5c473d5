"""The exceptions an orchestration sees."""


class DuroxideError(Exception):
    """Base of the errors the SDK raises."""


class ActivityError(DuroxideError):
    """An activity failed; the message is the activity's error text."""


class SubOrchestrationError(DuroxideError):
    """A child orchestration failed; the message is its error text."""


class PayloadError(DuroxideError):
    """A payload is not JSON, or a value cannot be written as JSON."""


class NondeterminismError(DuroxideError):
    """Orchestration code reached for something that differs on replay
    (the clock, randomness, sleeping); the context offers a replay-safe
    replacement."""
