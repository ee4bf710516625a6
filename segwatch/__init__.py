"""segwatch: real-time customer-funds segregation figures and alerts for an FCM."""

__version__ = "0.1.0"
