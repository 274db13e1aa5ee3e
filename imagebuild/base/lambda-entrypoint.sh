#!/bin/sh
# Stand-in for the entry point of AWS's Lambda base images: the handler name is the only argument.
# Outside Lambda (AWS_LAMBDA_RUNTIME_API unset) the runtime runs under the Runtime Interface Emulator.
if [ $# -ne 1 ]; then
  echo "lambda-entrypoint.sh: expected one argument, the handler (e.g. captioning.function.main.handler)" >&2
  exit 142
fi
export _HANDLER="$1"
if [ -z "${AWS_LAMBDA_RUNTIME_API}" ]; then
  exec /usr/local/bin/aws-lambda-rie /var/runtime/bootstrap
fi
exec /var/runtime/bootstrap
