"""The event bus: a port with a Kafka adapter (and an embedded one for single-process mode)."""

from .dispatch import Dispatcher, Route, on
from .envelope import Envelope, MalformedMessage, decode, encode, envelope_for
from .errors import PermanentError, TransientError
from .port import (
    DeadLetter,
    EventBus,
    EventFollower,
    EventPublisher,
    FollowHandler,
    Handler,
    RetryPolicy,
    TopicRetention,
    dead_letter_topic,
)

__all__ = [
    "DeadLetter",
    "Dispatcher",
    "Envelope",
    "EventBus",
    "EventFollower",
    "EventPublisher",
    "FollowHandler",
    "Handler",
    "MalformedMessage",
    "PermanentError",
    "RetryPolicy",
    "Route",
    "TopicRetention",
    "TransientError",
    "dead_letter_topic",
    "decode",
    "encode",
    "envelope_for",
    "on",
]
