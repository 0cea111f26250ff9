"""fence_ab.py ROUNDS (BASE=binary, FENCE=the same built with
glommio-fence-instead-of-membarrier.patch applied to vendor/glommio): 2 shards and 1 shard of
each, and redis-server pinned to CPU 0, interleaved; GET -P 1, GET and SET -P 16; ratios over
redis-server. See README.md (the patch was not kept)."""
import os, sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'cpu'))
import meter

base, fence = os.environ['BASE'], os.environ['FENCE']
two, one = '[placement]\nshards = 2\n', '[placement]\nshards = 1\n'
servers = [meter.start_nexus(base, 'base-2sh', 17840, two), meter.start_nexus(fence, 'fence-2sh', 17841, two),
           meter.start_nexus(base, 'base-1sh', 17842, one), meter.start_nexus(fence, 'fence-1sh', 17843, one),
           meter.start_redis('redis', 17844)]
cases = [('get', 1, 300000), ('get', 16, 2000000), ('set', 16, 2000000)]
meter.report(meter.rounds(servers, cases, int(sys.argv[1])), 'redis')
