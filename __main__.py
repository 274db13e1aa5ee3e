"""This directory's entry point, in two roles.

Run by Pulumi as this repository's program (Pulumi.yaml): one CaptioningPipeline per stack, sized by
Pulumi.<stack>.yaml, using the component as any program would (the `captioning` package, installed by
requirements.txt). Started by the engine as the package's plugin (`pulumi package add`, PulumiPlugin.yaml:
Pulumi's Python host runs a plugin directory's __main__.py): the component provider.
"""

from captioning.component.provider import running_as_plugin, serve

if running_as_plugin():
    serve()
else:
    import pulumi

    from captioning import CaptioningPipeline
    from captioning.component.pipeline import STACK_OUTPUT_NAMES
    from captioning.component.stack_config import args_from_config

    pipeline = CaptioningPipeline("captioning", args_from_config())

    # Every output of the component, in camelCase as the schema spells it (queueUrl in queue mode only).
    # `python -m ops` reads them back (ops/locate.py); keyPrefix and keySuffixes tell its backfill
    # which keys S3 would notify the pipeline of.
    for output, exported_as in STACK_OUTPUT_NAMES.items():
        value = getattr(pipeline, output)
        if value is not None:
            pulumi.export(exported_as, value)
