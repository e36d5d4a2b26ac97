# scripts/karpathy.mk — the splits of a data set that Karpathy's
# dataset_*.json describes (its images' "split": train, restval, val, test),
# for scripts/flickr30k.mk and scripts/coco.mk, included before
# scripts/experiment.mk.  They set KARPATHY (the JSON file, also the caption
# file) and IMAGES (the directory of the images, or of the "filepath"
# subdirectories COCO's entries name: train2014/, val2014/).
#
# Training takes train and restval (Karpathy's COCO split: 113,287 images),
# dev is val and test is test (5000 each for COCO, 1000 for Flickr30k).
OUT        ?= build/$(DATASET)
list_train  = $(OUT)/lists/train.names
list_dev    = $(OUT)/lists/dev.names
list_test   = $(OUT)/lists/test.names
paths_train = $(OUT)/lists/train.paths
paths_dev   = $(OUT)/lists/dev.paths
paths_test  = $(OUT)/lists/test.paths

# One run of the script writes the six lists.  The stamp is included, so make
# makes it first, then starts again knowing each split's size (its shards).
$(OUT)/lists/lists.mk: $(KARPATHY) scripts/karpathy-lists.py | $(OUT)/lists
	scripts/karpathy-lists.py $(KARPATHY) $(IMAGES) $(@D)
	echo '# the lists of $(KARPATHY), by scripts/karpathy-lists.py' $(into)
$(foreach s,train dev test,$(OUT)/lists/$(s).names $(OUT)/lists/$(s).paths): $(OUT)/lists/lists.mk ;
include $(OUT)/lists/lists.mk
