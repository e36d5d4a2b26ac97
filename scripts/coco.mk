# scripts/coco.mk — the MS COCO experiment (Table 1's third row) on a machine
# that has the images, from Karpathy's split file:
#
#   make -f scripts/coco.mk -j2 KARPATHY=PATH/dataset_coco.json IMAGES=PATH/coco
#
# IMAGES holds train2014/ and val2014/ (the "filepath" of each entry).  123,287
# images: 113,287 train (train + restval), 5000 dev (val), 5000 test;
# results/coco.md.  The targets and knobs are scripts/experiment.mk's; the
# splits come from the JSON file (scripts/karpathy.mk).  The f16 train cache is
# about 57 GB (28 GB with ENCODE_OPTS='--dtype u8'): sat-train maps it, its
# memory does not grow with it.
DATASET  := coco
TITLE    := MS COCO
KARPATHY ?= data/coco/dataset_coco.json
IMAGES   ?= data/coco
REFS     := $(KARPATHY)

include scripts/karpathy.mk
include scripts/experiment.mk
