"""ringwatch: watch a Cortex hash ring stored in DynamoDB from outside."""

__version__ = "0.1.0"
