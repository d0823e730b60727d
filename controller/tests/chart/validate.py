#!/usr/bin/env python3
"""Validate the objects `helm template` rendered, strictly, with
kubernetes-validate against each Kubernetes version given.

Objects whose kind is a custom resource outside core Kubernetes (the
Prometheus Operator's ServiceMonitor and PrometheusRule) have no schema in
kubernetes-validate: they are checked for apiVersion, kind and
metadata.name only, and listed as not schema-validated.

Usage: validate.py -k 1.33.0 [-k 1.37.0] FILE...
Prints one JSON object: {"validated": [...], "not_schema_validated": [...],
"errors": [...]}; exits 1 if any error.
"""
import argparse
import functools
import json
import sys

import kubernetes_validate.utils as kv

CUSTOM_RESOURCES = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
}


def name_of(resource):
    return f"{resource.get('kind')}/{(resource.get('metadata') or {}).get('name')}"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("-k", "--kubernetes-version", action="append", required=True)
    parser.add_argument("files", nargs="+")
    args = parser.parse_args()
    kv.schema_contents = functools.lru_cache(maxsize=None)(kv.schema_contents)
    report = {"validated": [], "not_schema_validated": [], "errors": []}
    for filename in args.files:
        for resource in kv.resources_from_file(filename):
            if not resource:
                continue
            key = (resource.get("apiVersion"), resource.get("kind"))
            metadata = resource.get("metadata")
            if key in CUSTOM_RESOURCES:
                if not isinstance(metadata, dict) or not metadata.get("name"):
                    report["errors"].append(f"{filename}: {name_of(resource)} has no metadata.name")
                elif not isinstance(resource.get("spec"), dict):
                    report["errors"].append(f"{filename}: {name_of(resource)} has no spec")
                else:
                    report["not_schema_validated"].append(name_of(resource))
                continue
            for version in args.kubernetes_version:
                try:
                    kv.validate(resource, version, strict=True)
                except kv.ValidationError as error:
                    path = ".".join(str(item) for item in error.path)
                    report["errors"].append(
                        f"{filename}: {name_of(resource)} against {error.version}: {path}: {error.message}")
                except (kv.SchemaNotFoundError, kv.InvalidSchemaError, kv.VersionNotSupportedError) as error:
                    report["errors"].append(
                        f"{filename}: {name_of(resource)} could not be validated: {getattr(error, 'message', error)}")
            report["validated"].append(name_of(resource))
    print(json.dumps(report))
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
