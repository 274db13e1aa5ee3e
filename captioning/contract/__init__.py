"""The contract between the component, the function, build-time preparation and the tools: names and
defaults each side reads (environment variables, statuses, metric names, the table's key, model file
names, the default model, the offline environment). Standard library only: it ships in the image."""
