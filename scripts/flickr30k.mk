# scripts/flickr30k.mk — the Flickr30k experiment (Table 1's second row) on a
# machine that has the data, from Karpathy's split file:
#
#   make -f scripts/flickr30k.mk -j2 KARPATHY=PATH/dataset_flickr30k.json IMAGES=PATH/flickr30k-images
#
# 31,783 images: 29,000 train, 1014 dev (val), 1000 test; results/flickr30k.md.
# The targets and knobs are scripts/experiment.mk's; the splits come from the
# JSON file (scripts/karpathy.mk).  The feature caches take about 16 GB as f16,
# 8 GB with ENCODE_OPTS='--dtype u8'.
DATASET  := flickr30k
TITLE    := Flickr30k
KARPATHY ?= data/flickr30k/dataset_flickr30k.json
IMAGES   ?= data/flickr30k/flickr30k-images
REFS     := $(KARPATHY)

include scripts/karpathy.mk
include scripts/experiment.mk
