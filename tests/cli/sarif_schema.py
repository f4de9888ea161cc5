"""The part of the SARIF 2.1.0 JSON schema (OASIS, sarif-schema-2.1.0.json) that covers what peftfix emits.

The official schema cannot be downloaded in tests (no network); this subset keeps its definitions' names,
required properties, types, minimums and enums for the objects we write, so a violation here is a violation
there.
"""

MULTIFORMAT_MESSAGE = {
    "type": "object",
    "required": ["text"],
    "properties": {"text": {"type": "string"}, "markdown": {"type": "string"}},
}

SARIF_2_1_0_SUBSET = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "Static Analysis Results Format (SARIF) Version 2.1.0 JSON Schema (subset)",
    "type": "object",
    "required": ["version", "runs"],
    "properties": {
        "$schema": {"type": "string", "format": "uri"},
        "version": {"enum": ["2.1.0"]},
        "runs": {
            "type": ["array", "null"],
            "minItems": 0,
            "uniqueItems": False,
            "items": {"$ref": "#/definitions/run"},
        },
    },
    "definitions": {
        "propertyBag": {
            "type": "object",
            "properties": {"tags": {"type": "array", "uniqueItems": True, "items": {"type": "string"}}},
            "additionalProperties": True,
        },
        "message": {
            "type": "object",
            "anyOf": [{"required": ["text"]}, {"required": ["id"]}],
            "properties": {"text": {"type": "string"}, "markdown": {"type": "string"}, "id": {"type": "string"}},
        },
        "multiformatMessageString": MULTIFORMAT_MESSAGE,
        "run": {
            "type": "object",
            "required": ["tool"],
            "properties": {
                "tool": {"$ref": "#/definitions/tool"},
                "results": {"type": ["array", "null"], "items": {"$ref": "#/definitions/result"}},
                "columnKind": {"enum": ["utf16CodeUnits", "unicodeCodePoints"]},
                "properties": {"$ref": "#/definitions/propertyBag"},
            },
        },
        "tool": {
            "type": "object",
            "required": ["driver"],
            "properties": {"driver": {"$ref": "#/definitions/toolComponent"}},
        },
        "toolComponent": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string"},
                "version": {"type": "string"},
                "informationUri": {"type": "string", "format": "uri"},
                "rules": {
                    "type": "array",
                    "uniqueItems": True,
                    "items": {"$ref": "#/definitions/reportingDescriptor"},
                },
            },
        },
        "reportingDescriptor": {
            "type": "object",
            "required": ["id"],
            "properties": {
                "id": {"type": "string"},
                "name": {"type": "string"},
                "shortDescription": {"$ref": "#/definitions/multiformatMessageString"},
                "fullDescription": {"$ref": "#/definitions/multiformatMessageString"},
                "help": {"$ref": "#/definitions/multiformatMessageString"},
                "helpUri": {"type": "string", "format": "uri"},
                "defaultConfiguration": {"$ref": "#/definitions/reportingConfiguration"},
                "properties": {"$ref": "#/definitions/propertyBag"},
            },
        },
        "reportingConfiguration": {
            "type": "object",
            "properties": {
                "enabled": {"type": "boolean"},
                "level": {"enum": ["none", "note", "warning", "error"]},
                "rank": {"type": "number", "minimum": -1.0, "maximum": 100.0},
            },
        },
        "result": {
            "type": "object",
            "required": ["message"],
            "properties": {
                "ruleId": {"type": "string"},
                "ruleIndex": {"type": "integer", "minimum": -1},
                "kind": {"enum": ["notApplicable", "pass", "fail", "review", "open", "informational"]},
                "level": {"enum": ["none", "note", "warning", "error"]},
                "message": {"$ref": "#/definitions/message"},
                "locations": {"type": "array", "items": {"$ref": "#/definitions/location"}},
                "fixes": {"type": "array", "uniqueItems": True, "items": {"$ref": "#/definitions/fix"}},
                "properties": {"$ref": "#/definitions/propertyBag"},
            },
        },
        "location": {
            "type": "object",
            "properties": {"physicalLocation": {"$ref": "#/definitions/physicalLocation"}},
        },
        "physicalLocation": {
            "type": "object",
            "anyOf": [{"required": ["address"]}, {"required": ["artifactLocation"]}],
            "properties": {
                "artifactLocation": {"$ref": "#/definitions/artifactLocation"},
                "region": {"$ref": "#/definitions/region"},
            },
        },
        "artifactLocation": {
            "type": "object",
            "properties": {"uri": {"type": "string", "format": "uri-reference"}, "uriBaseId": {"type": "string"}},
        },
        "region": {
            "type": "object",
            "properties": {
                "startLine": {"type": "integer", "minimum": 1},
                "startColumn": {"type": "integer", "minimum": 1},
                "endLine": {"type": "integer", "minimum": 1},
                "endColumn": {"type": "integer", "minimum": 1},
                "charOffset": {"type": "integer", "minimum": -1},
                "charLength": {"type": "integer", "minimum": 0},
            },
        },
        "fix": {
            "type": "object",
            "required": ["artifactChanges"],
            "properties": {
                "description": {"$ref": "#/definitions/message"},
                "artifactChanges": {
                    "type": "array",
                    "minItems": 1,
                    "uniqueItems": True,
                    "items": {"$ref": "#/definitions/artifactChange"},
                },
                "properties": {"$ref": "#/definitions/propertyBag"},
            },
        },
        "artifactChange": {
            "type": "object",
            "required": ["artifactLocation", "replacements"],
            "properties": {
                "artifactLocation": {"$ref": "#/definitions/artifactLocation"},
                "replacements": {"type": "array", "minItems": 1, "items": {"$ref": "#/definitions/replacement"}},
            },
        },
        "replacement": {
            "type": "object",
            "required": ["deletedRegion"],
            "properties": {
                "deletedRegion": {"$ref": "#/definitions/region"},
                "insertedContent": {"$ref": "#/definitions/artifactContent"},
            },
        },
        "artifactContent": {
            "type": "object",
            "properties": {"text": {"type": "string"}, "binary": {"type": "string"}},
        },
    },
}


def _close_objects(schema: dict) -> None:
    # Like the official schema, reject properties it does not define: a misspelt key ("startcolumn") would
    # otherwise pass silently. The property bag is the one open object.
    for name, definition in schema["definitions"].items():
        if name != "propertyBag" and definition.get("type") == "object":
            definition["additionalProperties"] = False
    schema["additionalProperties"] = False


_close_objects(SARIF_2_1_0_SUBSET)
