"""What a spawn or forkserver child imports to unpickle an object of the
private copy of CPython's test._test_multiprocessing (gbconformance loads it
under this name; _TestBarrier's tests send its functions and classes to
children). Importing it builds that copy with gobridge's factories, which
then stands in sys.modules under this name (the import returns it)."""
import gbconformance

gbconformance.build(gbconformance.START_METHOD)
