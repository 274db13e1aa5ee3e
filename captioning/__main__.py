"""`python -m captioning <engine address>`: the component provider plugin, as the Pulumi engine runs it."""

from captioning.component.provider import serve

if __name__ == "__main__":
    serve()
