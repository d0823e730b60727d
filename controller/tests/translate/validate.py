#!/usr/bin/env python3
"""Validate Kubernetes YAML files with kubernetes-validate, strictly, against
several Kubernetes versions in one process.

This is `kubernetes-validate --strict --quiet -k VERSION FILE...` for each
version, with its schema files read once instead of once per object (the
command line re-reads the large definitions file for every object, which
makes a corpus of thousands of objects take minutes). The validation itself
is kubernetes-validate's own `validate(..., strict=True)`.

Usage: validate.py -k 1.33.0 [-k 1.37.0] FILE...
Prints one `ERROR FILE ...` line per rejected object; exits 1 if any.
"""
import argparse
import functools
import sys

import kubernetes_validate.utils as kv


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("-k", "--kubernetes-version", action="append", required=True)
    parser.add_argument("files", nargs="+")
    args = parser.parse_args()
    kv.schema_contents = functools.lru_cache(maxsize=None)(kv.schema_contents)
    failed = 0
    for filename in args.files:
        for resource in kv.resources_from_file(filename):
            for version in args.kubernetes_version:
                try:
                    kv.validate(resource, version, strict=True)
                except kv.ValidationError as error:
                    path = ".".join(str(item) for item in error.path)
                    print(f"ERROR {filename} did not validate for resource {kv.kn(resource)} "
                          f"against version {error.version}: {path}: {error.message}")
                    failed += 1
                except (kv.SchemaNotFoundError, kv.InvalidSchemaError, kv.VersionNotSupportedError) as error:
                    print(f"ERROR {filename} could not be validated: {getattr(error, 'message', error)}")
                    failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
