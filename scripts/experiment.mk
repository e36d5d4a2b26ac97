# scripts/experiment.mk — a Show, Attend and Tell experiment, from images and
# captions to results/: included by scripts/flickr8k.mk, scripts/flickr30k.mk and
# scripts/coco.mk, which say what the data set is (before the include):
#   DATASET               its name: flickr8k, flickr30k or coco (the paper's rows of
#                         Table 1, the names of OUT and of the reports)
#   TITLE                 its name in the reports' titles
#   REFS                  the caption file (sat-train --captions, sat-eval --refs)
#   list_SPLIT, paths_SPLIT for SPLIT in train dev test: the split's image names (one
#                         per line), and a file of the same images' paths (the same
#                         order), or the rules that make them
#
# Targets, for make -f scripts/DATASET.mk:
#
#   make -f scripts/DATASET.mk -j2             # all: features, train-soft, train-hard, train-scst,
#                                              # decode, results
#   make -f scripts/DATASET.mk -j2 features    # the f16 feature cache of the three splits
#   make -f scripts/DATASET.mk train-soft      # sat-train --attention soft: $(RUNS)/soft/best.satm
#   make -f scripts/DATASET.mk train-hard      # hard attention, started from the soft model
#                                              # (HARD_INIT): $(RUNS)/hard/best.satm
#   make -f scripts/DATASET.mk train-scst      # self-critical fine-tuning of the hard model on
#                                              # CIDEr-D (SCST_OPTS), then the mean of its
#                                              # weights before and after: $(RUNS)/scst/best.satm
#   make -f scripts/DATASET.mk -j2 decode      # test split, each model: greedy (sat-decode) and beam
#                                              # k in $(BEAMS) (sat-beam), greedy with one location
#                                              # per word (hard-argmax, hard-sample), each scored by
#                                              # sat-eval (with the attention's entropy); the
#                                              # pointing check on the boxed images (scripts/boxes.tsv);
#                                              # and the default pipeline: the hard model and the SCST
#                                              # run's tuned.satm, an ensemble, on sat-encode's two
#                                              # views (the image and its mirror) of the test images
#   make -f scripts/DATASET.mk results         # results/DATASET.md (+ DATASET-curve.png with gnuplot)
#   make -f scripts/DATASET.mk -j2 tune-beam   # dev split: k in $(BEAMS) x --length-norm in
#                                              # $(TUNE_NORMS): results/DATASET-tuning.md
#
# Tune the beam on dev (tune-beam), then report test once (decode, results)
# with the chosen setting in BEAM_OPTS, e.g. BEAM_OPTS='--length-norm 1'.
#
# Knobs (make VAR=value):
#   EPOCHS, PATIENCE      sat-train --epochs, --patience (15, 3)
#   THREADS               BLAS threads per training run (half the CPUs: -j2 runs both at once)
#   CHECKPOINT_EVERY      batches between checkpoints (100)
#   ENCODE_OPTS           more sat-encode options for the caches, e.g. --dtype u8; the
#                         caches are float features (--precision float: the same bytes on
#                         every CPU, and what the shipped models were trained on) unless
#                         it says --precision int8
#   TRAIN_OPTS            more sat-train options for both runs, e.g. --hidden 1024
#   SOFT_OPTS, HARD_OPTS  more sat-train options for one kind, e.g. its --lambda
#   HARD_INIT             the hard run's starting weights: soft (RUNS/soft/best.satm, the
#                         default: hard attention fine-tunes the soft model), a model file,
#                         or empty for a random start
#   SCST_OPTS             the self-critical run's sat-train options (--objective scst
#                         --scst-baseline mean --lr 5e-5); it starts from RUNS/hard/best.satm,
#                         reads the expected context, and its best epoch (RUNS/scst/tuned.satm)
#                         is averaged with that start (sat-import --average) into best.satm
#   DECODE_OPTS           more sat-decode options (greedy), e.g. --max-len 20
#   BEAM_OPTS             more sat-beam options for the test split, e.g. --length-norm 1
#   BEAMS, TUNE_NORMS     beam widths (1 3 5 10) and length-norm exponents tried on dev (0 1)
#   OUT, RUNS, RESULTS    feature caches and captions (build/DATASET), the training runs
#                         RUNS/soft and RUNS/hard (OUT), the report (results)
#   TRAIN_IMAGES, DEV_IMAGES, TEST_IMAGES
#                         use only the first N images of a split, encoded afresh into
#                         OUT/shards: for smoke tests in a scratch OUT (outputs keep their names)
#
# Every output is written to a temp file and renamed.  A training run keeps
# RUNS/KIND/checkpoint.satm up to date and is marked finished by RUNS/KIND/done;
# re-running make after an interruption resumes it (sat-train --resume).  The
# programs are order-only prerequisites: rebuilding bin/ does not redo work
# already done (remove an output to redo it).  The training curve needs
# gnuplot (Debian: gnuplot-nox), an optional dependency: without it the report
# is written without the picture.
SHELL      := /bin/bash
.SHELLFLAGS := -eo pipefail -c
SAT_SHARED ?= ../shared
FLICKR8K   := $(SAT_SHARED)/data/flickr8k
OUT        ?= build/$(DATASET)
RUNS       ?= $(OUT)
RESULTS    ?= results
BIN        ?= bin
SHARD      ?= 500
SPLITS     := train dev test
KINDS      := soft hard scst

EPOCHS           ?= 15
PATIENCE         ?= 3
THREADS          ?= $(shell echo $$(( ($$(nproc) + 1) / 2 )))
CHECKPOINT_EVERY ?= 100
ENCODE_OPTS      ?=
TRAIN_OPTS       ?=
SOFT_OPTS        ?=
HARD_OPTS        ?= --lr 2e-4 --lr-decay 0.5
HARD_INIT        ?= soft
SCST_OPTS        ?= --objective scst --scst-baseline mean --lr 5e-5
DECODE_OPTS      ?=
BEAM_OPTS        ?=
BEAMS            ?= 1 3 5 10
TUNE_NORMS       ?= 0 1
GNUPLOT          ?= gnuplot

images_train := $(TRAIN_IMAGES)
images_dev   := $(DEV_IMAGES)
images_test  := $(TEST_IMAGES)

# CMD $(into): CMD's stdout becomes the target, through a temp file.
into = > $@.tmp || { rm -f $@.tmp; exit 1; }; mv -f $@.tmp $@

# shard numbers 000, 001, ... of a split (none while its list is still to be made)
shards = $(shell [ -e $(list_$(1)) ] && n=$$(wc -l < $(list_$(1))) && seq -f '%03g' 0 $$(( (n - 1) / $(SHARD) )))

.DEFAULT_GOAL := all
.PHONY: all features $(KINDS:%=train-%) decode results tune-beam
all: features $(KINDS:%=train-%) decode results
features: $(SPLITS:%=$(OUT)/%.sat)

define split_rules
$(OUT)/shards/$(1)-%.list: $(paths_$(1)) | $(OUT)/shards
	sed -n "$$$$((10#$$* * $(SHARD) + 1)),$$$$((10#$$* * $(SHARD) + $(SHARD)))p" $$< $$(into)

$(OUT)/$(1).sat: $(foreach s,$(call shards,$(1)),$(OUT)/shards/$(1)-$(s).sat)
	cat $$^ $$(into)
endef
$(foreach s,$(SPLITS),$(eval $(call split_rules,$(s))))

# the caches hold one view (sat-train reads view 0 only); the default pipeline's
# two-view test features are made below
$(OUT)/shards/%.sat: $(OUT)/shards/%.list | $(BIN)/sat-encode
	$(BIN)/sat-encode -q -j 1 --no-flip --precision float $(ENCODE_OPTS) -T $< -o $@

.PRECIOUS: $(OUT)/shards/%.list $(OUT)/shards/%.sat
$(OUT)/lists $(OUT)/shards $(OUT)/captions $(OUT)/tuning $(OUT)/pointing:
	mkdir -p $@

# ---- what a split is: its features and its image names (all, or the first N) ----
# feats_SPLIT and names_SPLIT; with N images, the first N names and their
# features, encoded by the shard rule above.
define subset_rules
ifeq ($(images_$(1)),)
feats_$(1) := $(OUT)/$(1).sat
names_$(1) := $(list_$(1))
else
feats_$(1) := $(OUT)/shards/$(1)-first$(images_$(1)).sat
names_$(1) := $(OUT)/shards/$(1)-first$(images_$(1)).names
$(OUT)/shards/$(1)-first$(images_$(1)).names: $(list_$(1)) | $(OUT)/shards
	head -n $(images_$(1)) $$< $$(into)
$(OUT)/shards/$(1)-first$(images_$(1)).list: $(paths_$(1)) | $(OUT)/shards
	head -n $(images_$(1)) $$< $$(into)
endif
endef
$(foreach s,$(SPLITS),$(eval $(call subset_rules,$(s))))

# ---- training: RUNS/KIND/{best.satm, checkpoint.satm, train.log, done} ----
train_args = --captions $(REFS) --features $(feats_train) --features $(feats_dev) \
             --train $(names_train) --dev $(names_dev) --epochs $(EPOCHS) --patience $(PATIENCE) \
             --threads $(THREADS) --checkpoint-every $(CHECKPOINT_EVERY) -q $(TRAIN_OPTS)

# init_hard: the model file HARD_INIT names, a prerequisite of the hard run
init_hard := $(if $(filter soft,$(HARD_INIT)),$(RUNS)/soft/best.satm,$(HARD_INIT))
opts_soft  = --attention soft $(SOFT_OPTS)
opts_hard  = --attention hard $(HARD_OPTS) $(if $(init_hard),--init $(init_hard))
deps_hard := $(if $(filter soft,$(HARD_INIT)),$(RUNS)/soft/done,$(init_hard))
# the self-critical run: sat-train writes tuned.satm; best.satm is its mean with the start,
# which beat both on Flickr8k's dev split (results/flickr8k-tried.md)
opts_scst  = --attention soft $(SCST_OPTS) --init $(RUNS)/hard/best.satm
deps_scst := $(RUNS)/hard/done
out_soft  := best.satm
out_hard  := best.satm
out_scst  := tuned.satm
after_scst = $(BIN)/sat-import --average -o $$(@D)/best.satm $(RUNS)/hard/best.satm $$(@D)/tuned.satm
$(RUNS)/soft/best.satm $(RUNS)/hard/best.satm: $(RUNS)/%/best.satm: | $(RUNS)/%/done ;

define train_rules
train-$(1): $(RUNS)/$(1)/done
$(RUNS)/$(1)/done: $(feats_train) $(feats_dev) $(names_train) $(names_dev) $(deps_$(1)) | $(BIN)/sat-train
	mkdir -p $$(@D)
	$(BIN)/sat-train $(train_args) $(opts_$(1)) --checkpoint $$(@D) -o $$(@D)/$(out_$(1)) \
	    $$$$([ -s $$(@D)/checkpoint.satm ] && echo --resume) 2> >(tee -a $$(@D)/stderr.log >&2)
	$(after_$(1))
	touch -r $$(@D)/best.satm $$@
endef
$(foreach k,$(KINDS),$(eval $(call train_rules,$(k))))
$(RUNS)/%/train.log: | $(RUNS)/%/done ;

# ---- captions and scores: DIR/KIND-METHOD.sat (caption records) and .eval ----
# test: greedy and beam%;  dev (tuning): beamK-normA.
define decode_rules
$(OUT)/captions/$(1)-greedy.sat: $(RUNS)/$(1)/done $(feats_test) | $(BIN)/sat-decode $(OUT)/captions
	$(BIN)/sat-decode -m $(RUNS)/$(1)/best.satm -f msgpack $(DECODE_OPTS) $(feats_test) $$(into)
$(OUT)/captions/$(1)-beam%.sat: $(RUNS)/$(1)/done $(feats_test) | $(BIN)/sat-beam $(OUT)/captions
	$(BIN)/sat-beam -m $(RUNS)/$(1)/best.satm -f msgpack -k $$* $(BEAM_OPTS) $(feats_test) $$(into)
$(OUT)/captions/$(1)-hard-%.sat: $(RUNS)/$(1)/done $(feats_test) | $(BIN)/sat-decode $(OUT)/captions
	$(BIN)/sat-decode -m $(RUNS)/$(1)/best.satm -f msgpack --attention hard-$$* $(DECODE_OPTS) \
	    $(feats_test) $$(into)
$(OUT)/pointing/$(1)-greedy.sat: $(RUNS)/$(1)/done $(OUT)/pointing.sat | $(BIN)/sat-decode $(OUT)/pointing
	$(BIN)/sat-decode -m $(RUNS)/$(1)/best.satm -f msgpack $(DECODE_OPTS) $(OUT)/pointing.sat $$(into)
$(OUT)/pointing/$(1)-beam%.sat: $(RUNS)/$(1)/done $(OUT)/pointing.sat | $(BIN)/sat-beam $(OUT)/pointing
	$(BIN)/sat-beam -m $(RUNS)/$(1)/best.satm -f msgpack -k $$* $(BEAM_OPTS) $(OUT)/pointing.sat $$(into)
$(OUT)/pointing/$(1)-hard-%.sat: $(RUNS)/$(1)/done $(OUT)/pointing.sat | $(BIN)/sat-decode $(OUT)/pointing
	$(BIN)/sat-decode -m $(RUNS)/$(1)/best.satm -f msgpack --attention hard-$$* $(DECODE_OPTS) \
	    $(OUT)/pointing.sat $$(into)
$(OUT)/tuning/$(1)-beam%.sat: $(RUNS)/$(1)/done $(feats_dev) | $(BIN)/sat-beam $(OUT)/tuning
	$(BIN)/sat-beam -m $(RUNS)/$(1)/best.satm -f msgpack -k $$(subst -norm, --length-norm ,$$*) \
	    $(feats_dev) $$(into)
endef
$(foreach k,$(KINDS),$(eval $(call decode_rules,$(k))))

# ---- the default pipeline: sat-encode's records of two views (the image and its
# mirror) of the test images, captioned by the ensemble of the hard model and its
# self-critical fine-tune (sat-beam's default models, trained by train-hard and train-scst) ----
views2_test := $(OUT)/test-views2.sat
$(views2_test): $(if $(images_test),$(OUT)/shards/test-first$(images_test).list,$(paths_test)) | $(BIN)/sat-encode
	$(BIN)/sat-encode -q --precision float $(ENCODE_OPTS) -T $< -o $@
ensemble := -m $(RUNS)/hard/best.satm -m $(RUNS)/scst/tuned.satm
$(OUT)/captions/default-greedy.sat: $(RUNS)/hard/done $(RUNS)/scst/done $(views2_test) | $(BIN)/sat-decode $(OUT)/captions
	$(BIN)/sat-decode $(ensemble) -f msgpack $(DECODE_OPTS) $(views2_test) $(into)
$(OUT)/captions/default-beam%.sat: $(RUNS)/hard/done $(RUNS)/scst/done $(views2_test) | $(BIN)/sat-beam $(OUT)/captions
	$(BIN)/sat-beam $(ensemble) -f msgpack -k $* $(BEAM_OPTS) $(views2_test) $(into)

# sat-eval's text output: images, reflen, testlen, BLEU-n, BLEU-n-nobp, ROUGE-L, CIDEr-D,
# and the attention's entropy (soft records)
define eval_rule
$(OUT)/$(1)/%.eval: $(OUT)/$(1)/%.sat $(names_$(2)) | $(BIN)/sat-eval
	$(BIN)/sat-eval --refs $(REFS) --split $(names_$(2)) --entropy $$< $$(into)
endef
$(eval $(call eval_rule,captions,test))
$(eval $(call eval_rule,tuning,dev))

# ---- the pointing check: the photos of SAT_SHARED/images and the Flickr8k
# images boxed in BOXES, encoded afresh; sat-eval --boxes on each model's captions ----
BOXES   ?= scripts/boxes.tsv
$(OUT)/pointing.list: $(BOXES) | $(OUT)/shards
	grep -v '^#' $< | cut -f1 | sort -u | while read -r n; do \
	    for d in $(SAT_SHARED)/images $(FLICKR8K)/images; do [ ! -e $$d/$$n ] || { echo $$d/$$n; break; }; done; \
	done $(into)
$(OUT)/pointing.sat: $(OUT)/pointing.list | $(BIN)/sat-encode
	$(BIN)/sat-encode -q -T $< -o $@
$(OUT)/pointing/%.point: $(OUT)/pointing/%.sat $(BOXES) | $(BIN)/sat-eval
	$(BIN)/sat-eval --boxes $(BOXES) $< $(into)

methods    := greedy $(BEAMS:%=beam%) hard-argmax hard-sample
default_methods := greedy $(BEAMS:%=beam%)
test_evals := $(foreach k,$(KINDS),$(methods:%=$(OUT)/captions/$(k)-%.eval)) \
              $(default_methods:%=$(OUT)/captions/default-%.eval)
points     := $(foreach k,$(KINDS),$(methods:%=$(OUT)/pointing/$(k)-%.point))
tune_evals := $(foreach k,$(KINDS),$(foreach b,$(BEAMS),$(TUNE_NORMS:%=$(OUT)/tuning/$(k)-beam$(b)-norm%.eval)))
decode: $(test_evals) $(points)
.SECONDARY: $(test_evals:.eval=.sat) $(tune_evals:.eval=.sat) $(points:.point=.sat)

# ---- the reports ----
report  := scripts/report.sh
Kind     = $(Kind_$(1))
Kind_soft := Soft-Attention
Kind_hard := Hard-Attention
Kind_scst := Hard-Attention + SCST, averaged
Kind_default := Hard-Attention and its SCST fine-tune, an ensemble on both views (the default pipeline)
label    = $(call Kind,$(1)) (ours), $(if $(filter greedy hard-%,$(2)),$(2),beam $(2:beam%=%))
knobs   := EPOCHS PATIENCE ENCODE_OPTS TRAIN_OPTS SOFT_OPTS HARD_OPTS HARD_INIT SCST_OPTS DECODE_OPTS BEAM_OPTS \
           $(foreach v,OUT RUNS RESULTS SAT_SHARED TRAIN_IMAGES DEV_IMAGES TEST_IMAGES BEAMS TUNE_NORMS, \
             $(if $(filter command line,$(origin $(v))),$(v)))
repro    = make -f $(firstword $(MAKEFILE_LIST)) -j2 $(foreach v,$(knobs),$(v)='$($(v))') $(1)
curve   := $(if $(shell command -v $(GNUPLOT)),$(RESULTS)/$(DATASET)-curve.png)

results: $(RESULTS)/$(DATASET).md $(curve)
tune-beam: $(RESULTS)/$(DATASET)-tuning.md

$(RESULTS)/$(DATASET).md: $(test_evals) $(points) $(KINDS:%=$(RUNS)/%/train.log) $(curve) $(report)
	mkdir -p $(@D)
	$(report) --title "Show, Attend and Tell on $(TITLE): test split" --paper $(DATASET) \
	    $(foreach k,$(KINDS),--log "$(call Kind,$(k))=$(RUNS)/$(k)/train.log") \
	    $(if $(curve),--curve $(notdir $(curve))) --command "$(call repro,results)" \
	    $(foreach k,$(KINDS),$(foreach m,$(methods),"$(call label,$(k),$(m))=$(OUT)/captions/$(k)-$(m).eval")) \
	    $(foreach m,$(default_methods),"$(call label,default,$(m))=$(OUT)/captions/default-$(m).eval") \
	    $(foreach k,$(KINDS),$(foreach m,$(methods),--pointing "$(call label,$(k),$(m))=$(OUT)/pointing/$(k)-$(m).point")) \
	    $(into)

$(RESULTS)/$(DATASET)-tuning.md: $(tune_evals) $(report)
	mkdir -p $(@D)
	$(report) --title "Beam width and length normalization on the $(TITLE) dev split" \
	    $(foreach k,$(KINDS),--best "$(call Kind,$(k))") --command "$(call repro,tune-beam)" \
	    $(foreach k,$(KINDS),$(foreach b,$(BEAMS),$(foreach a,$(TUNE_NORMS), \
	      "$(call Kind,$(k)), beam $(b), length norm $(a)=$(OUT)/tuning/$(k)-beam$(b)-norm$(a).eval"))) \
	    $(into)

$(RESULTS)/$(DATASET)-curve.png: $(KINDS:%=$(RUNS)/%/train.log) scripts/curve.gp
	mkdir -p $(@D)
	$(GNUPLOT) -e "soft='$(RUNS)/soft/train.log'; hard='$(RUNS)/hard/train.log'; out='$@.tmp'" \
	    scripts/curve.gp || { rm -f $@.tmp; exit 1; }
	mv -f $@.tmp $@
