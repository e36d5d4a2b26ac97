# curve.gp — training curves of an experiment's two runs (scripts/experiment.mk):
# per epoch the training loss (cross-entropy per word, left) and the dev BLEU-4
# (right) of the soft and hard attention runs, from sat-train's tab-separated
# logs (epoch loss xent_per_token bleu1..4 x100 seconds, a header line).
#
#   gnuplot -e "soft='build/flickr8k/soft/train.log'; hard='…/hard/train.log'; out='curve.png'" scripts/curve.gp
set terminal pngcairo size 1000,420 font ",10"
set output out
set datafile separator "\t"
set key autotitle columnhead
set multiplot layout 1,2
set xlabel "epoch"
set xtics 1
set grid
set title "training loss (cross-entropy per word)"
plot soft using 1:3 with linespoints title "soft", hard using 1:3 with linespoints title "hard"
set title "dev BLEU-4 (x100)"
set yrange [0:*]
plot soft using 1:7 with linespoints title "soft", hard using 1:7 with linespoints title "hard"
unset multiplot
