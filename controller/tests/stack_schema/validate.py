#!/usr/bin/env python3
"""Validate custom resources against their CRD's openAPIV3Schema the way the
API server does with fieldValidation=Strict: types, formats, enums, bounds,
required fields, and unknown fields as errors (except under
x-kubernetes-preserve-unknown-fields). The structural schema is turned into
JSON Schema and checked with jsonschema; apiVersion, kind and metadata,
which the CRD's schema leaves out, are checked against the CRD's group,
served versions and kind, and a subset of ObjectMeta.

A null where the schema does not allow one is not an error: it is pruned
before validating, as the API server prunes nulls of non-nullable fields.

Reads one JSON object on stdin: {"crd": CRD, "objects": [{"source": NAME,
"object": OBJECT}, ...]}. Prints one JSON object: {"validated": [NAME, ...],
"errors": [{"source": NAME, "path": "spec.x", "message": ...}, ...]}; exits 1
if any error.
"""
import datetime
import json
import re
import sys

import jsonschema

# Keywords carried over as they are: their meaning is the same in OpenAPI
# v3.0 schemas and JSON Schema draft 7 (the bounds' exclusive forms aside).
VALUE_KEYWORDS = {
    "type", "enum", "required", "format", "minimum", "maximum", "minLength",
    "maxLength", "pattern", "minItems", "maxItems", "uniqueItems",
    "minProperties", "maxProperties", "multipleOf",
}
# Keywords that do not constrain a value (or are handled beside the others).
IGNORED = {
    "description", "title", "default", "example", "externalDocs", "nullable",
    "x-kubernetes-preserve-unknown-fields", "x-kubernetes-int-or-string",
    "x-kubernetes-list-type", "x-kubernetes-list-map-keys",
    "x-kubernetes-map-type", "x-kubernetes-embedded-resource",
    "exclusiveMinimum", "exclusiveMaximum",
}
INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}

DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
# ObjectMeta as a client may send it; other fields are unknown (Strict).
OBJECT_META = {
    "type": "object",
    "additionalProperties": False,
    "anyOf": [{"required": ["name"]}, {"required": ["generateName"]}],
    "properties": {
        "name": {"type": "string", "maxLength": 253, "pattern": DNS_SUBDOMAIN},
        "generateName": {"type": "string"},
        "namespace": {"type": "string", "maxLength": 63, "pattern": DNS_LABEL},
        "labels": STRING_MAP,
        "annotations": STRING_MAP,
        "finalizers": {"type": "array", "items": {"type": "string"}},
        "ownerReferences": {"type": "array", "items": {"type": "object"}},
        "uid": {"type": "string"},
        "resourceVersion": {"type": "string"},
        "generation": {"type": "integer"},
        "creationTimestamp": {"type": ["string", "null"]},
        "deletionTimestamp": {"type": "string"},
        "deletionGracePeriodSeconds": {"type": "integer"},
        "managedFields": {"type": "array"},
        "selfLink": {"type": "string"},
    },
}


class UnsupportedSchema(Exception):
    pass


def convert(node, path):
    """One structural-schema node as JSON Schema."""
    if not isinstance(node, dict):
        raise UnsupportedSchema(f"{path}: not a schema: {node!r}")
    out = {}
    for key, value in node.items():
        if key in VALUE_KEYWORDS:
            out[key] = value
        elif key == "properties":
            out["properties"] = {
                name: convert(child, f"{path}.{name}") for name, child in value.items()
            }
        elif key == "additionalProperties":
            out[key] = value if isinstance(value, bool) else convert(value, f"{path}.*")
        elif key == "items":
            out[key] = convert(value, f"{path}[]")
        elif key in ("allOf", "anyOf", "oneOf"):
            out[key] = [convert(child, path) for child in value]
        elif key == "not":
            out[key] = convert(value, path)
        elif key in IGNORED:
            continue
        else:
            # A keyword this checker does not know would be ignored silently.
            raise UnsupportedSchema(f"{path}: keyword {key} is not supported")
    # OpenAPI v3.0's boolean exclusive bounds.
    if node.get("exclusiveMinimum") is True and "minimum" in out:
        out["exclusiveMinimum"] = out.pop("minimum")
    if node.get("exclusiveMaximum") is True and "maximum" in out:
        out["exclusiveMaximum"] = out.pop("maximum")
    if node.get("format") in INT_RANGES and node.get("type") == "integer":
        low, high = INT_RANGES[node["format"]]
        out.setdefault("minimum", low)
        out.setdefault("maximum", high)
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = out.get("anyOf", []) + [{"type": "integer"}, {"type": "string"}]
    if node.get("nullable"):
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = out["enum"] + [None]
    is_object = node.get("type") == "object" or "properties" in node
    if (is_object and not node.get("x-kubernetes-preserve-unknown-fields")
            and "additionalProperties" not in node):
        out["additionalProperties"] = False
    return out


def prune_nulls(value, node):
    """Drops the nulls of fields whose schema is not nullable, as the API
    server does before validating (a null it keeps must be nullable)."""
    if not isinstance(node, dict):
        return
    if isinstance(value, dict):
        for key in list(value):
            child = node.get("properties", {}).get(key)
            if child is None and isinstance(node.get("additionalProperties"), dict):
                child = node["additionalProperties"]
            if child is None:
                continue
            if value[key] is None and not child.get("nullable"):
                del value[key]
            else:
                prune_nulls(value[key], child)
    elif isinstance(value, list) and isinstance(node.get("items"), dict):
        for item in value:
            prune_nulls(item, node["items"])


def served_schema(crd, api_version):
    """The openAPIV3Schema of a served version, by its apiVersion."""
    spec = crd["spec"]
    for version in spec["versions"]:
        if f"{spec['group']}/{version['name']}" == api_version and version.get("served"):
            return version["schema"]["openAPIV3Schema"]
    return None


def object_schema(crd, api_version):
    """The JSON Schema of a whole object of a served version, or None."""
    structural = served_schema(crd, api_version)
    if structural is None:
        return None
    schema = convert(structural, "")
    schema["properties"] = dict(schema.get("properties", {}))
    schema["properties"]["apiVersion"] = {"const": api_version}
    schema["properties"]["kind"] = {"const": crd["spec"]["names"]["kind"]}
    schema["properties"]["metadata"] = OBJECT_META
    schema["required"] = sorted(set(schema.get("required", [])) | {"apiVersion", "kind", "metadata"})
    return schema


FORMATS = jsonschema.FormatChecker(formats=())


@FORMATS.checks("date-time", raises=ValueError)
def is_date_time(value):
    if not isinstance(value, str):
        return True
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})", value):
        raise ValueError(f"{value!r} is not an RFC 3339 date-time")
    datetime.datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    return True


def dotted(path):
    out = ""
    for item in path:
        out += f"[{item}]" if isinstance(item, int) else (f".{item}" if out else str(item))
    return out


def deepest(error):
    """The most specific cause of an anyOf error ("is not valid under any of
    the given schemas" names no field)."""
    while error.context:
        error = max(error.context, key=lambda e: len(e.absolute_path))
    return error


def main() -> int:
    request = json.load(sys.stdin)
    crd = request["crd"]
    report = {"validated": [], "errors": []}
    for item in request["objects"]:
        source, resource = item["source"], item["object"]
        api_version = resource.get("apiVersion") if isinstance(resource, dict) else None
        try:
            schema = object_schema(crd, api_version)
            if schema is not None:
                prune_nulls(resource, served_schema(crd, api_version))
        except UnsupportedSchema as error:
            report["errors"].append({"source": source, "path": "", "message": f"schema: {error}"})
            continue
        if schema is None:
            report["errors"].append({"source": source, "path": "apiVersion",
                                     "message": f"{api_version!r} is not a served version of the CRD"})
            continue
        validator = jsonschema.Draft7Validator(schema, format_checker=FORMATS)
        errors = sorted(validator.iter_errors(resource), key=lambda e: list(map(str, e.absolute_path)))
        for error in errors:
            error = deepest(error)
            report["errors"].append({"source": source, "path": dotted(error.absolute_path),
                                     "message": error.message})
        if not errors:
            report["validated"].append(source)
    print(json.dumps(report))
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
