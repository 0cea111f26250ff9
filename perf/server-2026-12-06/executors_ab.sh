#!/bin/bash
# rounds of GET/SET at P1 and P16 against glommio (17611), threads (17612), redis (17613), order rotated
for r in 1 2 3 4; do
  for t in set get; do for P in 1 16; do
    n=$([ $P = 1 ] && echo 100000 || echo 1000000)
    order="17611 17612 17613"; [ $((r%3)) = 1 ] && order="17612 17613 17611"; [ $((r%3)) = 2 ] && order="17613 17611 17612"
    for port in $order; do
      rps=$(redis-benchmark -p $port -c 50 -n $n -P $P -t $t -r 100000 --csv 2>/dev/null | tail -1 | cut -d, -f2 | tr -d '"')
      echo "$r $t $P $port $rps"
    done
  done; done
done
