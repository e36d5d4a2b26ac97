# scripts/flickr8k.mk — the Flickr8k experiment, from ../shared to results/.
#
#   make -f scripts/flickr8k.mk -j2 features   # the f16 feature cache of the three splits
#
# Each split is cut into shards of SHARD images, each shard encoded by its own
# single-threaded sat-encode, so `make -j N` keeps N cores busy; the split's
# stream is the concatenation of its shards (a concatenation of sat streams
# is a sat stream).  sat-encode -o writes a temp file and renames it, so an
# interrupted run restarts where it stopped.
SHELL      := /bin/bash
.SHELLFLAGS := -eo pipefail -c
SAT_SHARED ?= ../shared
FLICKR     := $(SAT_SHARED)/data/flickr8k
OUT        ?= build/flickr8k
BIN        ?= bin
SHARD      ?= 500
SPLITS     := train dev test

list_train := $(FLICKR)/Flickr_8k.trainImages.txt
list_dev   := $(FLICKR)/Flickr_8k.devImages.txt
list_test  := $(FLICKR)/Flickr_8k.testImages.txt

# shard numbers 000, 001, ... of a split
shards = $(shell n=$$(wc -l < $(list_$(1))); seq -f '%03g' 0 $$(( (n - 1) / $(SHARD) )))

.PHONY: features
features: $(SPLITS:%=$(OUT)/%.sat)

define split_rules
$(OUT)/shards/$(1)-%.list: $(list_$(1)) | $(OUT)/shards
	sed -n "$$$$((10#$$* * $(SHARD) + 1)),$$$$((10#$$* * $(SHARD) + $(SHARD)))p" $$< | sed 's|^|$(FLICKR)/images/|' > $$@.tmp && mv $$@.tmp $$@

$(OUT)/$(1).sat: $(foreach s,$(call shards,$(1)),$(OUT)/shards/$(1)-$(s).sat)
	cat $$^ > $$@.tmp && mv $$@.tmp $$@
endef
$(foreach s,$(SPLITS),$(eval $(call split_rules,$(s))))

$(OUT)/shards/%.sat: $(OUT)/shards/%.list $(BIN)/sat-encode
	$(BIN)/sat-encode -q -j 1 -T $< -o $@

.PRECIOUS: $(OUT)/shards/%.list $(OUT)/shards/%.sat
$(OUT)/shards:
	mkdir -p $@
