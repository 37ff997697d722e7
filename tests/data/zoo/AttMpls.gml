graph [
  DateObtained "16/11/10"
  GeoLocation "USA"
  GeoExtent "Country"
  Network "ATT North America"
  Provenance "Primary"
  Access 0
  Source "http://www.att.com/Common/merger/files/pdf/wired-network/Domestic_0C-768_Network.pdf"
  Version "1.0"
  DateType "Historic"
  Type "COM"
  Backbone 1
  Commercial 0
  label "AttMpls"
  ToolsetVersion "0.3.34dev-20120328"
  Customer 1
  IX 0
  SourceGitVersion "e278b1b"
  DateModifier "="
  DateMonth 0
  LastAccess "3/08/10"
  Layer "IP"
  Creator "Topology Zoo Toolset"
  Developed 1
  Transit 1
  NetworkDate "2007-2008"
  DateYear 0
  LastProcessed "2011_09_01"
  Testbed 0
  node [
    id 0
    label "NY54"
    Country "United States"
    Longitude -74.00597
    Internal 1
    Latitude 40.71427
    type "Completion 2007 - 2008"
  ]
  node [
    id 1
    label "CMBR"
    Country "United States"
    Longitude -71.10561
    Internal 1
    Latitude 42.3751
    type "Completion 2007 - 2008"
  ]
  node [
    id 2
    label "CHCG"
    Country "United States"
    Longitude -87.65005
    Internal 1
    Latitude 41.85003
    type "Completed"
  ]
  node [
    id 3
    label "CLEV"
    Country "United States"
    Longitude -81.69541
    Internal 1
    Latitude 41.4995
    type "Completed"
  ]
  node [
    id 4
    label "RLGH"
    Country "United States"
    Longitude -78.63861
    Internal 1
    Latitude 35.7721
    type "Completion 2007 - 2008"
  ]
  node [
    id 5
    label "ATLN"
    Country "United States"
    Longitude -84.38798
    Internal 1
    Latitude 33.749
    type "Completed"
  ]
  node [
    id 6
    label "PHLA"
    Country "United States"
    Longitude -75.16379
    Internal 1
    Latitude 39.95234
    type "Completed"
  ]
  node [
    id 7
    label "WASH"
    Country "United States"
    Longitude -77.03637
    Internal 1
    Latitude 38.89511
    type "Completed"
  ]
  node [
    id 8
    label "NSVL"
    Country "United States"
    Longitude -86.78444
    Internal 1
    Latitude 36.16589
    type "Completion 2007 - 2008"
  ]
  node [
    id 9
    label "STLS"
    Country "United States"
    Longitude -90.19789
    Internal 1
    Latitude 38.62727
    type "Completed"
  ]
  node [
    id 10
    label "NWOR"
    Country "United States"
    Longitude -90.07507
    Internal 1
    Latitude 29.95465
    type "Completion 2007 - 2008"
  ]
  node [
    id 11
    label "HSTN"
    Country "United States"
    Longitude -95.36327
    Internal 1
    Latitude 29.76328
    type "Completed"
  ]
  node [
    id 12
    label "SNAN"
    Country "United States"
    Longitude -98.49363
    Internal 1
    Latitude 29.42412
    type "Completion 2007 - 2008"
  ]
  node [
    id 13
    label "DLLS"
    Country "United States"
    Longitude -96.80667
    Internal 1
    Latitude 32.78306
    type "Completed"
  ]
  node [
    id 14
    label "ORLD"
    Country "United States"
    Longitude -81.37924
    Internal 1
    Latitude 28.53834
    type "Completed"
  ]
  node [
    id 15
    label "DNVR"
    Country "United States"
    Longitude -104.9847
    Internal 1
    Latitude 39.73915
    type "Completion 2007 - 2008"
  ]
  node [
    id 16
    label "KSCY"
    Country "United States"
    Longitude -94.62746
    Internal 1
    Latitude 39.11417
    type "Completion 2007 - 2008"
  ]
  node [
    id 17
    label "SNFN"
    Country "United States"
    Longitude -122.41942
    Internal 1
    Latitude 37.77493
    type "Completed"
  ]
  node [
    id 18
    label "SCRM"
    Country "United States"
    Longitude -121.4944
    Internal 1
    Latitude 38.58157
    type "Completion 2007 - 2008"
  ]
  node [
    id 19
    label "PTLD"
    Country "United States"
    Longitude -122.67621
    Internal 1
    Latitude 45.52345
    type "Completion 2007 - 2008"
  ]
  node [
    id 20
    label "STTL"
    Country "United States"
    Longitude -122.33207
    Internal 1
    Latitude 47.60621
    type "Completion 2007 - 2008"
  ]
  node [
    id 21
    label "SLKC"
    Country "United States"
    Longitude -111.89105
    Internal 1
    Latitude 40.76078
    type "Completion 2007 - 2008"
  ]
  node [
    id 22
    label "LA03"
    Country "United States"
    Longitude -118.24368
    Internal 1
    Latitude 34.05223
    type "Completed"
  ]
  node [
    id 23
    label "SNDG"
    Country "United States"
    Longitude -117.15726
    Internal 1
    Latitude 32.71533
    type "Completion 2007 - 2008"
  ]
  node [
    id 24
    label "PHNX"
    Country "United States"
    Longitude -112.07404
    Internal 1
    Latitude 33.44838
    type "Completion 2007 - 2008"
  ]
  edge [
    source 0
    target 1
    LinkLabel "Completion 2007-2008"
    LinkSpeed "10"
    LinkLabel "10 Gbps"
    LinkSpeedUnits "G"
    LinkSpeedRaw 10000000000.0
  ]
  edge [
    source 0
    target 2
    LinkLabel "Completed"
    LinkSpeed "10"
    LinkLabel "10 Gbps"
    LinkSpeedUnits "G"
    LinkSpeedRaw 10000000000.0
  ]
  edge [
    source 0
    target 6
    LinkLabel "Completion 2007-2008"
    LinkSpeed "10"
    LinkLabel "10 Gbps"
    LinkSpeedUnits "G"
    LinkSpeedRaw 10000000000.0
  ]
  edge [
    source 0
    target 7
    LinkLabel "Completed"
    LinkSpeed "10"
    LinkLabel "10 Gbps"
    LinkSpeedUnits "G"
    LinkSpeedRaw 10000000000.0
  ]
  edge [
    source 1
    target 6
    LinkLabel "Completion 2007-2008"
    LinkSpeed "10"
    LinkLabel "10 Gbps"
    LinkSpeedUnits "G"
    LinkSpeedRaw 10000000000.0
  ]
  edge [
    source 2
    target 3
    LinkLabel "Completed"
    LinkSpeed "10"
    LinkLabel "10 Gbps"
    LinkSpeedUnits "G"
    LinkSpeedRaw 10000000000.0
  ]
  edge [
    source 2
    target 6
    LinkLabel "Completed"
    LinkSpeed "10"
    LinkLabel "10 Gbps"
    LinkSpeedUnits "G"
    LinkSpeedRaw 10000000000.0
  ]
  edge [
    source 2
    target 9
    LinkLabel "Completed"
    LinkSpeed "10"
    LinkLabel "10 Gbps"
    LinkSpeedUnits "G"
    LinkSpeedRaw 10000000000.0
  ]
  edge [
    source 2
    target 15
    LinkLabel "Completion 2007-2008"
    LinkSpeed "10"
    LinkLabel "10 Gbps"
    LinkSpeedUnits "G"
    LinkSpeedRaw 10000000000.0
  ]
  edge [
    source 2
    target 16
    LinkLabel "Completion 2007-2008"
    LinkSpeed "10"
    LinkLabel "10 Gbps"
    LinkSpeedUnits "G"
    LinkSpeedRaw 10000000000.0

  ]
  edge [
    source 2
    target 17
    LinkLabel "Completed"
    LinkSpeed "10"
    LinkLabel "10 Gbps"
    LinkSpeedUnits "G"
    LinkSpeedRaw 10000000000.0
  ]
  edge [
    source 2
    target 20
    LinkLabel "Completion 2007-2008"
    LinkSpeed "10"
    LinkLabel "10 Gbps"
    LinkSpeedUnits "G"
    LinkSpeedRaw 10000000000.0
  ]
  edge [
    source 2
    target 21
    LinkLabel "Completion 2007-2008"
    LinkSpeed "10"
    LinkLabel "10 Gbps"
    LinkSpeedUnits "G"
    LinkSpeedRaw 10000000000.0
  ]
  edge [
    source 3
    target 8
    LinkLabel "Completion 2007-2008"
    LinkSpeed "10"
    LinkLabel "10 Gbps"
    LinkSpeedUnits "G"
    LinkSpeedRaw 10000000000.0
  ]
  edge [
    source 3
    target 9
    LinkLabel "Completion 2007-2008"
    LinkSpeed "10"
    LinkLabel "10 Gbps"
    LinkSpeedUnits "G"
    LinkSpeedRaw 10000000000.0
  ]
  edge [
    source 3
    target 6
    LinkLabel "Completed"
    LinkSpeed "10"
    LinkLabel "10 Gbps"
    LinkSpeedUnits "G"
    LinkSpeedRaw 10000000000.0
  ]
  edge [
    source 4
    target 5
    LinkLabel "Completion 2007-2008"
    LinkSpeed "10"
    LinkLabel "10 Gbps"
    LinkSpeedUnits "G"
    LinkSpeedRaw 10000000000.0
  ]
  edge [
    source 4
    target 7
    LinkLabel "Completion 2007-2008"
    LinkSpeed "10"
    LinkLabel "10 Gbps"
    LinkSpeedUnits "G"
    LinkSpeedRaw 10000000000.0
  ]
  edge [
    source 5
    target 7
    LinkLabel "Completed"
    LinkSpeed "10"
    LinkLabel "10 Gbps"
    LinkSpeedUnits "G"
    LinkSpeedRaw 10000000000.0
  ]
  edge [
    source 5
    target 8
    LinkLabel "Completion 2007-2008"
    LinkSpeed "10"
    LinkLabel "10 Gbps"
    LinkSpeedUnits "G"
    LinkSpeedRaw 10000000000.0
  ]
  edge [
    source 5
    target 9
    LinkLabel "Completed"
    LinkSpeed "10"
    LinkLabel "10 Gbps"
    LinkSpeedUnits "G"
    LinkSpeedRaw 10000000000.0
  ]
  edge [
    source 5
    target 13
    LinkLabel "Completed"
    LinkSpeed "10"
    LinkLabel "10 Gbps"
    LinkSpeedUnits "G"
    LinkSpeedRaw 10000000000.0
  ]
  edge [
    source 5
    target 14
    LinkLabel "Completed"
    LinkSpeed "10"
    LinkLabel "10 Gbps"
    LinkSpeedUnits "G"
    LinkSpeedRaw 10000000000.0
  ]
  edge [
    source 6
    target 7
    LinkLabel "Completed"
    LinkSpeed "10"
    LinkLabel "10 Gbps"
    LinkSpeedUnits "G"
    LinkSpeedRaw 10000000000.0
  ]
  edge [
    source 8
    target 9
    LinkLabel "Completion 2007-2008"
    LinkSpeed "10"
    LinkLabel "10 Gbps"
    LinkSpeedUnits "G"
    LinkSpeedRaw 10000000000.0
  ]
  edge [
    source 8
    target 13
    LinkLabel "Completion 2007-2008"
    LinkSpeed "10"
    LinkLabel "10 Gbps"
    LinkSpeedUnits "G"
    LinkSpeedRaw 10000000000.0
  ]
  edge [
    source 9
    target 13
    LinkLabel "Completed"
    LinkSpeed "10"
    LinkLabel "10 Gbps"
    LinkSpeedUnits "G"
    LinkSpeedRaw 10000000000.0
  ]
  edge [
    source 9
    target 16
    LinkLabel "Completion 2007-2008"
    LinkSpeed "10"
    LinkLabel "10 Gbps"
    LinkSpeedUnits "G"
    LinkSpeedRaw 10000000000.0
  ]
  edge [
    source 9
    target 22
    LinkLabel "Completion 2007-2008"
    LinkSpeed "10"
    LinkLabel "10 Gbps"
    LinkSpeedUnits "G"
    LinkSpeedRaw 10000000000.0
  ]
  edge [
    source 10
    target 11
    LinkLabel "Completion 2007-2008"
    LinkSpeed "10"
    LinkLabel "10 Gbps"
    LinkSpeedUnits "G"
    LinkSpeedRaw 10000000000.0
  ]
  edge [
    source 10
    target 13
    LinkLabel "Completion 2007-2008"
    LinkSpeed "10"
    LinkLabel "10 Gbps"
    LinkSpeedUnits "G"
    LinkSpeedRaw 10000000000.0
  ]
  edge [
    source 10
    target 14
    LinkLabel "Completion 2007-2008"
    LinkSpeed "10"
    LinkLabel "10 Gbps"
    LinkSpeedUnits "G"
    LinkSpeedRaw 10000000000.0
  ]
  edge [
    source 11
    target 12
    LinkLabel "Completion 2007-2008"
    LinkSpeed "10"
    LinkLabel "10 Gbps"
    LinkSpeedUnits "G"
    LinkSpeedRaw 10000000000.0
  ]
  edge [
    source 11
    target 13
    LinkLabel "Completed"
    LinkSpeed "10"
    LinkLabel "10 Gbps"
    LinkSpeedUnits "G"
    LinkSpeedRaw 10000000000.0
  ]
  edge [
    source 11
    target 14
    LinkLabel "Completed"
    LinkSpeed "10"
    LinkLabel "10 Gbps"
    LinkSpeedUnits "G"
    LinkSpeedRaw 10000000000.0
  ]
  edge [
    source 12
    target 24
    LinkLabel "Completion 2007-2008"
    LinkSpeed "10"
    LinkLabel "10 Gbps"
    LinkSpeedUnits "G"
    LinkSpeedRaw 10000000000.0
  ]
  edge [
    source 12
    target 13
    LinkLabel "Completion 2007-2008"
    LinkSpeed "10"
    LinkLabel "10 Gbps"
    LinkSpeedUnits "G"
    LinkSpeedRaw 10000000000.0
  ]
  edge [
    source 13
    target 15
    LinkLabel "Completion 2007-2008"
    LinkSpeed "10"
    LinkLabel "10 Gbps"
    LinkSpeedUnits "G"
    LinkSpeedRaw 10000000000.0
  ]
  edge [
    source 13
    target 16
    LinkLabel "Completion 2007-2008"
    LinkSpeed "10"
    LinkLabel "10 Gbps"
    LinkSpeedUnits "G"
    LinkSpeedRaw 10000000000.0
  ]
  edge [
    source 13
    target 17
    LinkLabel "Completion 2007-2008"
    LinkSpeed "10"
    LinkLabel "10 Gbps"
    LinkSpeedUnits "G"
    LinkSpeedRaw 10000000000.0
  ]
  edge [
    source 13
    target 22
    LinkLabel "Completed"
    LinkSpeed "10"
    LinkLabel "10 Gbps"
    LinkSpeedUnits "G"
    LinkSpeedRaw 10000000000.0
  ]
  edge [
    source 15
    target 16
    LinkLabel "Completion 2007-2008"
    LinkSpeed "10"
    LinkLabel "10 Gbps"
    LinkSpeedUnits "G"
    LinkSpeedRaw 10000000000.0
  ]
  edge [
    source 15
    target 17
    LinkLabel "Completion 2007-2008"
    LinkSpeed "10"
    LinkLabel "10 Gbps"
    LinkSpeedUnits "G"
    LinkSpeedRaw 10000000000.0
  ]
  edge [
    source 15
    target 21
    LinkLabel "Completion 2007-2008"
    LinkSpeed "10"
    LinkLabel "10 Gbps"
    LinkSpeedUnits "G"
    LinkSpeedRaw 10000000000.0
  ]
  edge [
    source 16
    target 17
    LinkLabel "Completion 2007-2008"
    LinkSpeed "10"
    LinkLabel "10 Gbps"
    LinkSpeedUnits "G"
    LinkSpeedRaw 10000000000.0
  ]
  edge [
    source 17
    target 18
    LinkLabel "Completion 2007-2008"
    LinkSpeed "10"
    LinkLabel "10 Gbps"
    LinkSpeedUnits "G"
    LinkSpeedRaw 10000000000.0
  ]
  edge [
    source 17
    target 19
    LinkLabel "Completion 2007-2008"
    LinkSpeed "10"
    LinkLabel "10 Gbps"
    LinkSpeedUnits "G"
    LinkSpeedRaw 10000000000.0
  ]
  edge [
    source 17
    target 20
    LinkLabel "Completion 2007-2008"
    LinkSpeed "10"
    LinkLabel "10 Gbps"
    LinkSpeedUnits "G"
    LinkSpeedRaw 10000000000.0
  ]
  edge [
    source 17
    target 21
    LinkLabel "Completion 2007-2008"
    LinkSpeed "10"
    LinkLabel "10 Gbps"
    LinkSpeedUnits "G"
    LinkSpeedRaw 10000000000.0
  ]
  edge [
    source 17
    target 22
    LinkLabel "Completed"
    LinkSpeed "10"
    LinkLabel "10 Gbps"
    LinkSpeedUnits "G"
    LinkSpeedRaw 10000000000.0
  ]
  edge [
    source 18
    target 21
    LinkLabel "Completion 2007-2008"
    LinkSpeed "10"
    LinkLabel "10 Gbps"
    LinkSpeedUnits "G"
    LinkSpeedRaw 10000000000.0
  ]
  edge [
    source 19
    target 20
    LinkLabel "Completion 2007-2008"
    LinkSpeed "10"
    LinkLabel "10 Gbps"
    LinkSpeedUnits "G"
    LinkSpeedRaw 10000000000.0
  ]
  edge [
    source 21
    target 22
    LinkLabel "Completion 2007-2008"
    LinkSpeed "10"
    LinkLabel "10 Gbps"
    LinkSpeedUnits "G"
    LinkSpeedRaw 10000000000.0
  ]
  edge [
    source 22
    target 23
    LinkLabel "Completion 2007-2008"
    LinkSpeed "10"
    LinkLabel "10 Gbps"
    LinkSpeedUnits "G"
    LinkSpeedRaw 10000000000.0
  ]
  edge [
    source 22
    target 24
    LinkLabel "Completion 2007-2008"
    LinkSpeed "10"
    LinkLabel "10 Gbps"
    LinkSpeedUnits "G"
    LinkSpeedRaw 10000000000.0
  ]
  edge [
    source 22
    target 24
    LinkLabel "Completion 2007-2008"
    LinkSpeed "10"
    LinkLabel "10 Gbps"
    LinkSpeedUnits "G"
    LinkSpeedRaw 10000000000.0
  ]
  edge [
    source 23
    target 24
    LinkLabel "Completion 2007-2008"
    LinkSpeed "10"
    LinkLabel "10 Gbps"
    LinkSpeedUnits "G"
    LinkSpeedRaw 10000000000.0
  ]
]
