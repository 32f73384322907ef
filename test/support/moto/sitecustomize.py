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

moto also finds one instance by id (InstanceBackend.get_instance, get_instance_by_id) by copying
every reservation of the region and scanning every instance: RunInstances does that twice per
instance (its profile association, its root volume), RegisterTargets once per target, and
DescribeTargetHealth once per target of the group (so its cost grew with the square of the fleet),
and TerminateInstances and DescribeInstances by id build a map of every instance per call. At 2,000 instances moto's thread
spent most of a scale-up there, where EC2's cost does not grow with the fleet. The look-up below
keeps an id -> reservation index, extended with the reservations added since (moto only appends),
and falls back to moto's own scan for anything it does not find; it returns the same object.
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

        from moto.ec2.models.instances import InstanceBackend

        _scan_get_instance = InstanceBackend.get_instance
        _scan_get_instance_by_id = InstanceBackend.get_instance_by_id

        def _indexed_instance(backend, instance_id):
            index = backend.__dict__.setdefault("_nstance_instance_index", {})
            seen = backend.__dict__.get("_nstance_reservations_indexed", 0)
            reservations = backend.reservations
            if instance_id not in index and len(reservations) != seen:
                if len(reservations) < seen:
                    index.clear()
                    seen = 0
                for reservation in list(reservations.values())[seen:]:
                    for instance in reservation.instances:
                        index[instance.id] = reservation.id
                backend.__dict__["_nstance_reservations_indexed"] = len(reservations)
            reservation = reservations.get(index.get(instance_id, ""))
            if reservation is not None:
                for instance in reservation.instances:
                    if instance.id == instance_id:
                        return instance
            return None

        def _indexed_get_instance(self, instance_id):
            return _indexed_instance(self, instance_id) or _scan_get_instance(self, instance_id)

        def _indexed_get_instance_by_id(self, instance_id):
            return _indexed_instance(self, instance_id) or _scan_get_instance_by_id(self, instance_id)

        _scan_get_multi_instances_by_id = InstanceBackend.get_multi_instances_by_id

        def _indexed_get_multi_instances_by_id(self, instance_ids, filters=None):
            found = [_indexed_instance(self, instance_id) for instance_id in instance_ids]
            if any(instance is None for instance in found):
                return _scan_get_multi_instances_by_id(self, instance_ids, filters)
            return [instance for instance in found if instance.applies(filters)]

        InstanceBackend.get_instance = _indexed_get_instance
        InstanceBackend.get_multi_instances_by_id = _indexed_get_multi_instances_by_id
        InstanceBackend.get_instance_by_id = _indexed_get_instance_by_id
        # The stack checks for this line: a moto started without the index must not pass for one with it.
        sys.stderr.write("nstance sitecustomize: indexed EC2 tag look-up on (and instance look-up by id)\n")
        sys.stderr.flush()
