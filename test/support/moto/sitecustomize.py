"""
Loaded by the Python interpreter at start-up when this folder is on PYTHONPATH: the test stack's
global setup puts it there for the moto it starts (test/support/moto-tags.ts), and for nothing else.

moto looks up one EC2 resource's tags by scanning every tag in the region with a regular
expression per entry (TaggedEC2Resource.get_tags -> TagBackend.describe_tags), and a filtered
DescribeInstances does that once per tag filter and once more per instance to render it. With
5,000 instances of 7 tags each, one listing takes minutes: a benchmark would measure moto's tag
store rather than the collector, where EC2 answers a page of 1,000 in about a second. The test
suite leaves a few hundred instances behind, file after file, so without it the last files run
several times slower than the first. This
replaces that one lookup with a read of the same per-resource dictionary; what it returns is
unchanged (the same entries, in the same order).
"""
import os
import sys

if os.environ.get("NSTANCE_MOTO_INDEXED_TAGS") == "1":
    try:
        from moto.ec2.models.core import TaggedEC2Resource
        from moto.ec2.utils import EC2_PREFIX_TO_RESOURCE, get_prefix
    except ImportError:  # not moto's interpreter: nothing to patch
        TaggedEC2Resource = None

    if TaggedEC2Resource is not None:

        def _indexed_get_tags(self):
            resource_id = getattr(self, "id", None)
            if not resource_id:
                return []
            tags = self.ec2_backend.tags.get(resource_id, {})
            resource_type = EC2_PREFIX_TO_RESOURCE.get(get_prefix(resource_id), "")
            return [{"resource_id": resource_id, "key": key, "value": value, "resource_type": resource_type} for key, value in tags.items()]

        TaggedEC2Resource.get_tags = _indexed_get_tags
        # The stack checks for this line: a moto started without the index must not pass for one with it.
        sys.stderr.write("nstance sitecustomize: indexed EC2 tag look-up on\n")
        sys.stderr.flush()
