# scripts/flickr8k.mk — the Flickr8k experiment, from ../shared to results/:
#
#   make -f scripts/flickr8k.mk -j2             # features, training, decoding, results/flickr8k.md
#
# The targets and knobs are scripts/experiment.mk's.  The data: SAT_SHARED
# (../shared) holds data/flickr8k/ with the caption file, the official split
# lists and images/ (README says where to get them).
DATASET    := flickr8k
TITLE      := Flickr8k
SAT_SHARED ?= ../shared
FLICKR     := $(SAT_SHARED)/data/flickr8k
REFS       := $(FLICKR)/Flickr8k.token.txt
list_train := $(FLICKR)/Flickr_8k.trainImages.txt
list_dev   := $(FLICKR)/Flickr_8k.devImages.txt
list_test  := $(FLICKR)/Flickr_8k.testImages.txt
paths_train = $(OUT)/lists/train.paths
paths_dev   = $(OUT)/lists/dev.paths
paths_test  = $(OUT)/lists/test.paths

include scripts/experiment.mk

# a split's images: its names under FLICKR/images
define flickr8k_paths
$(OUT)/lists/$(1).paths: $(list_$(1)) | $(OUT)/lists
	sed 's|^|$(FLICKR)/images/|' $$< $$(into)
endef
$(foreach s,$(SPLITS),$(eval $(call flickr8k_paths,$(s))))
