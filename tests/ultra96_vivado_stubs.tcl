# Recording stand-ins for the Vivado Tcl commands of the Ultra96 build scripts, so that the
# generated scripts run in a plain tclsh (tests/test_ultra96_tcl.py).
#
#   tclsh ultra96_vivado_stubs.tcl RECORD SCRIPT [OPTION VALUE]...
#
# runs SCRIPT (the Amaranth Vivado script, which sources the block design script) in the current
# folder. Every Vivado command appends one JSON array to RECORD: its name and its arguments;
# set_property appends one ["set_property", NAME, VALUE, OBJECT] per property, a -dict expanded
# in its order. A command without a stand-in here is an error: each one below is a command of the
# Vivado Tcl reference (UG835), with only the options the scripts use.
#
# OPTION VALUE pairs describe the world the scripts see:
#   board                 the board part get_board_parts finds ("" = no board files)
#   pll_mhz               the PLL the PS divides for pl_clk0 (default 1500)
#   ps_ignores_frequency  1: pl_clk0 stays at the preset's 100 MHz whatever is requested
#   hwh                   where generate_target leaves the .hwh: gen (PROJECT.gen/..., Vivado
#                         2020.2 and later), srcs (beside the .bd), get_files (only get_files
#                         finds it), none
#   wns, whs              worst setup and hold slack after routing, ns ("" = no timed paths)
#   hp0_ddr               1: the S_AXI port's address space gets the PS's HP0 DDR segments (as
#                         assign_bd_address does with S_AXI_HP0_FPD enabled); 0: none
# The PS model: the board preset (apply_bd_automation) sets PSU__OVERRIDE__BASIC_CLOCK to 1 and
# fixed dividers for 100 MHz; while it is 1, a requested PL0 frequency is ignored, as on Vivado.

# The stand-ins' state lives in the namespace stub: the scripts use global variables of their own.
namespace eval stub {
    variable record_file [open [lindex $argv 0] w]
    variable script [lindex $argv 1]
    variable option
    array set option {board "" pll_mhz 1500 ps_ignores_frequency 0 hwh gen wns 0.25 whs 0.02
                      hp0_ddr 1}
    array set option [lrange $argv 2 end]
    variable property
    array set property {}
    variable project ""
    variable bd ""
    variable addressed 0
}

proc stub::json_string {text} {
    return "\"[string map {\\ \\\\ \" \\\" \n \\n \r \\r \t \\t} $text]\""
}

proc stub::record {args} {
    set items {}
    foreach item $args {
        lappend items [stub::json_string $item]
    }
    puts $::stub::record_file "\[[join $items {, }]\]"
    flush $::stub::record_file
}

# A Vivado command: record the call, then run BODY with the arguments in $args.
proc vivado {name body} {
    proc $name {args} "stub::record $name {*}\$args\n$body"
}

proc unknown {args} {
    error "[lindex $args 0] is not a Vivado command the stubs know (tests/ultra96_vivado_stubs.tcl)"
}

rename source tcl_source
proc source {file} {
    stub::record source $file
    uplevel 1 [list tcl_source $file]
}

# The PS's PL0 clock: the nearest PLL / n (n = DIVISOR0 * DIVISOR1, DIVISOR1 = 1 here).
proc stub::ps_set_pl0 {ps mhz} {
    set n [expr {max(1, min(63, round($::stub::option(pll_mhz) / double($mhz))))}]
    set ::stub::property($ps,CONFIG.PSU__CRL_APB__PL0_REF_CTRL__DIVISOR0) $n
    set ::stub::property($ps,CONFIG.PSU__CRL_APB__PL0_REF_CTRL__DIVISOR1) 1
    set ::stub::property($ps/pl_clk0,CONFIG.FREQ_HZ) \
        [expr {round($::stub::option(pll_mhz) * 1e6 / $n)}]
}

proc stub::set_one {name value object} {
    if {$object eq ""} {
        error "set_property $name: no objects"
    }
    stub::record set_property $name $value $object
    if {$name eq "CONFIG.PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ"} {
        if {$::stub::property($object,CONFIG.PSU__OVERRIDE__BASIC_CLOCK) == 0
                && !$::stub::option(ps_ignores_frequency)} {
            stub::ps_set_pl0 $object $value
        }
    }
    set ::stub::property($object,$name) $value
}

proc set_property {args} {
    if {[lindex $args 0] eq "-dict"} {
        foreach {name value} [lindex $args 1] {
            stub::set_one $name $value [lindex $args 2]
        }
    } else {
        lassign $args name value object
        stub::set_one $name $value $object
    }
}

vivado get_property {
    if {[lindex $args 0] eq "-quiet"} {
        set args [lrange $args 1 end]
    }
    lassign $args name object
    switch -- $object {
        path_setup {return $::stub::option(wns)}
        path_hold {return $::stub::option(whs)}
    }
    if {$name eq "DIRECTORY" && $object eq $::stub::project} {
        return [pwd]
    }
    if {$name eq "NAME" && $object eq $::stub::project} {
        return $::stub::project
    }
    if {[info exists ::stub::property($object,$name)]} {
        return $::stub::property($object,$name)
    }
    return ""
}

# Amaranth's Vivado script.
vivado create_project {
    set ::stub::project [lindex $args [expr {[lsearch $args -name] + 1}]]
}
vivado current_project {return $::stub::project}
vivado add_files {}
vivado read_xdc {}
vivado synth_design {}
vivado get_cells {return ""}
vivado get_pins {return ""}
vivado get_clocks {return ""}
vivado all_fanin {return ""}
vivado set_false_path {}
vivado set_max_delay {}
vivado report_timing_summary {}
vivado report_utilization {}
vivado report_io {}
vivado report_control_sets {}
vivado report_clock_utilization {}
vivado report_route_status {}
vivado report_drc {}
vivado report_methodology {}
vivado report_power {}
vivado opt_design {}
vivado place_design {}
vivado route_design {}
vivado phys_opt_design {}
vivado write_checkpoint {}
vivado write_bitstream {
    set file [open [lindex $args end] w]
    puts $file "stub bitstream"
    close $file
}
vivado quit {
    close $::stub::record_file
    exit 0
}

# The block design.
vivado get_ipdefs {
    regexp {xilinx.com:ip:(\w+):} [lindex $args end] -> name
    return [list xilinx.com:ip:$name:1.0 xilinx.com:ip:$name:3.5]
}
vivado get_board_parts {return $::stub::option(board)}
vivado create_bd_design {set ::stub::bd [lindex $args 0]}
vivado create_bd_cell {
    set cell /[lindex $args end]
    if {[string match *:zynq_ultra_ps_e:* [lindex $args [expr {[lsearch $args -vlnv] + 1}]]]} {
        set ::stub::property($cell,CONFIG.PSU__OVERRIDE__BASIC_CLOCK) 0
        stub::ps_set_pl0 $cell 100
    }
    return $cell
}
vivado apply_bd_automation {
    # The board preset: fixed dividers for a 100 MHz pl_clk0, IRQ0 enabled.
    set ps [lindex $args end]
    stub::ps_set_pl0 $ps 100
    set ::stub::property($ps,CONFIG.PSU__OVERRIDE__BASIC_CLOCK) 1
    set ::stub::property($ps,CONFIG.PSU__USE__IRQ0) 1
}
vivado get_bd_pins {return [lindex $args 0]}
vivado get_bd_intf_pins {return [lindex $args 0]}
vivado get_bd_ports {return /[lindex $args 0]}
vivado get_bd_intf_ports {return /[lindex $args 0]}
vivado create_bd_port {return /[lindex $args end]}
vivado create_bd_intf_port {return /[lindex $args end]}
vivado connect_bd_net {}
vivado connect_bd_intf_net {}
vivado assign_bd_address {set ::stub::addressed 1}
vivado get_bd_addr_spaces {return [lindex $args 0]}
vivado get_bd_addr_segs {
    # Once addresses are assigned: the PS's segment of the M_AXI port, and the S_AXI port's
    # segments of the PS's memory behind S_AXI_HP0_FPD.
    set space [lindex $args end]
    if {!$::stub::addressed} {
        return ""
    }
    if {$space eq "S_AXI"} {
        if {!$::stub::option(hp0_ddr)} {
            return ""
        }
        return [list /S_AXI/SEG_zynq_ultra_ps_e_0_HP0_DDR_LOW \
                     /S_AXI/SEG_zynq_ultra_ps_e_0_HP0_LPS_OCM]
    }
    return "$space/SEG_M_AXI_Reg"
}
vivado validate_bd_design {}
vivado save_bd_design {}
vivado get_files {
    set pattern [lindex $args end]
    if {$pattern eq "$::stub::bd.bd"} {
        return [file join [pwd] $::stub::project.srcs sources_1 bd $::stub::bd $::stub::bd.bd]
    }
    if {[string match *.hwh $pattern] && [info exists ::stub::hwh_elsewhere]} {
        return $::stub::hwh_elsewhere
    }
    return ""
}
vivado generate_target {
    set bd_dir [file dirname [lindex $args end]]
    switch -- $::stub::option(hwh) {
        gen {set dir [file join [pwd] $::stub::project.gen sources_1 bd $::stub::bd hw_handoff]}
        srcs {set dir [file join $bd_dir hw_handoff]}
        get_files {set dir [file join [pwd] elsewhere]}
        none {return}
    }
    file mkdir $dir
    set hwh [file join $dir $::stub::bd.hwh]
    set file [open $hwh w]
    puts $file "<stub hwh of $::stub::bd/>"
    close $file
    if {$::stub::option(hwh) eq "get_files"} {
        set ::stub::hwh_elsewhere $hwh
    }
}
vivado make_wrapper {
    set bd_file [lindex $args [expr {[lsearch $args -files] + 1}]]
    return [file join [file dirname $bd_file] hdl ${::stub::bd}_wrapper.v]
}

# Timing and the handoff.
vivado get_timing_paths {
    set paths {}
    foreach {kind slack} [list path_setup $::stub::option(wns) path_hold $::stub::option(whs)] {
        if {$slack eq ""} {
            continue
        }
        if {"-hold" in $args && $kind eq "path_setup"} {
            continue
        }
        if {"-setup" in $args && $kind eq "path_hold"} {
            continue
        }
        set limit [lsearch $args -slack_lesser_than]
        if {$limit >= 0 && $slack >= [lindex $args [expr {$limit + 1}]]} {
            continue
        }
        lappend paths $kind
    }
    return $paths
}
vivado report_timing {return "stub report_timing [lindex $args 1]"}
vivado write_hw_platform {
    set file [open [lindex $args end] w]
    puts $file "stub xsa"
    close $file
}

cd [file dirname $stub::script]
source [file tail $stub::script]
