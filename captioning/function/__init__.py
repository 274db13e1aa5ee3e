"""The captioning function: exactly what the image runs (`captioning.function.main.handler`): events in,
objects fetched, captions made by the captioning core, items written. It imports the contract and its own
modules only, never the component, build-time preparation or the tools."""
