import mmap

share_file='/tmp/mm.txt'
f = open(share_file, 'wb')
f.write(b'a' * share_size)
f.close()
f = open(share_file, 'r+b')
mm = mmap.mmap(f.fileno(), 0)
f.close()
