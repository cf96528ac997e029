"""The Cortex ring item format, pure: the InstanceDesc schema, decoding, token ownership."""
