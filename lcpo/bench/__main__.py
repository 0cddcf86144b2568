from lcpo.bench import main

main()
