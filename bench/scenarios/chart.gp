# bench/scenarios chart: handshakes per server CPU-second of every row.
# Called by bench/scenarios/run as
#   gnuplot -e "datafile='chart.dat'; outfile='chart.png'; term='png'; rows=N" chart.gp
# chart.dat: index "row" median color min max (color: 1 PEM, 2 ihsm,
# 3 SoftHSM2 in process, 4 SoftHSM2 behind p11-kit server, 5 PEM with
# ssl-mode-async); the whiskers span the repeats.
if (term eq 'svg') {
    set terminal svg size 1000,560 dynamic font 'sans,11' background rgb 'white'
} else {
    set terminal pngcairo size 1000,560 font 'sans,10' background rgb 'white'
}
set output outfile
set title "TLS 1.3 full handshakes per server CPU-second (server + device processes; higher is better)"
set style fill solid 0.85 border -1
set boxwidth 0.7
set grid ytics lc rgb '#dddddd'
set ylabel "handshakes / server CPU-s"
stats datafile using 6 nooutput
set yrange [0:STATS_max * 1.25]
set xrange [-0.7:rows-0.3]
set xtics rotate by -40 left font ',9' nomirror
set bmargin 9
set rmargin 9
set key off
set linetype 1 lc rgb '#4c72b0'
set linetype 2 lc rgb '#dd8452'
set linetype 3 lc rgb '#55a868'
set linetype 4 lc rgb '#c44e52'
set linetype 5 lc rgb '#8172b3'
set label 1 "blue: PEM file   orange: ihsm   green: SoftHSM2 in process   red: SoftHSM2 behind p11-kit server   purple: PEM + ssl-mode-async" \
    at graph 0.01, graph 0.96 font ',9'
set label 2 "bars: median of the repeats; whiskers: lowest and highest repeat" at graph 0.01, graph 0.91 font ',9'
plot datafile using 1:3:4:xtic(2) with boxes lc variable, \
     '' using 1:3:5:6 with errorbars lc rgb '#333333' pt -1 lw 1, \
     '' using 1:($6):(sprintf("%.0f", $3)) with labels offset 0,0.7 font ',8'
